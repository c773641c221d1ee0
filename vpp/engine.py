"""The simulation engine: a SimPy environment that owns time and events.

Processes (engine time in seconds from the scenario start):

* one *events* process per fleet with discrete events (EV arrivals and
  departures), applying each step's events in one batch;
* the *calls* process: each demand-response call announced at its notice
  (strategies see it from then on);
* the *dispatcher*, every dispatch interval: forecasts with errors ->
  flexibility forms -> strategy -> setpoints for the next interval;
* the *clock*, every step: every fleet steps once (vectorised), the export
  limiter curtails what a node cannot export, the breaker of a node with a
  hard import limit cuts its loads' draw to the limit, and the grid closes
  each node's balance.

Events at the same instant run in that order (events, dispatcher, clock),
by SimPy event priority.  The engine is the only part that calls both the
assets and the optimizer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from vpp.assets.base import Fleet
from vpp.comms import COUNT_COLUMNS, SetpointLink, snapshot
from vpp.dispatch import Decision, DispatchProblem, NodeLimits
from vpp.drcalls import DRCalls
from vpp.exogenous import Exogenous, Forecaster
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid
from vpp.optimizer.base import Strategy
from vpp.outages import OutageDraw
from vpp.queueing import start_queue
from vpp.recorder import Recorder
from vpp.rng import component_rng
from vpp.scenario import Scenario
from vpp.sim import CLOCK, DISPATCH, EVENTS, at_step
from vpp.timeline import calendar_months
from vpp.trading import Trading

__all__ = ["Engine"]

BREAKER_TOL_KW = 1e-9          # import beyond a hard limit the breaker leaves alone (rounding) [kW]


def _or_inf(x: float | None) -> float:
    return float("inf") if x is None else float(x)


@dataclass(frozen=True)
class _Cadence:
    interval_steps: int
    fine_steps: int
    horizon_steps: int
    coarse_steps: int


class Engine:
    """Runs one scenario with one strategy.

    Parameters
    ----------
    scenario : Scenario
    fleets : list of Fleet
    strategy : Strategy
    exogenous : Exogenous
        Actuals on the padded timeline.
    forecaster : Forecaster
    progress : callable, optional
        ``progress(k, n_steps)`` after each simulated step.
    """

    def __init__(self, scenario: Scenario, fleets: list[Fleet], strategy: Strategy,
                 exogenous: Exogenous, forecaster: Forecaster,
                 progress: Callable[[int, int], None] | None = None, calls: DRCalls | None = None,
                 trading: Trading | None = None):
        self.scenario, self.fleets, self.strategy = scenario, fleets, strategy
        self.calls = calls if calls is not None else DRCalls(scenario)
        self.trading = trading
        self.exo, self.forecaster, self.progress = exogenous, forecaster, progress
        self.timeline = scenario.timeline()
        self.nodes = tuple(NodeLimits(n.name, n.import_limit_kw, n.export_limit_kw) for n in scenario.nodes)
        self.node_of = np.array([self._node_index(f.node) for f in fleets], dtype=int)
        self.hard_import_limit_kw = np.array([n.import_limit_kw if n.limits == "hard" else np.inf
                                              for n in scenario.nodes])
        d, step_min = scenario.dispatch, scenario.time.step_min
        self.cadence = _Cadence(d.interval_min // step_min, int(round(d.fine_horizon_h * 60 / step_min)),
                                int(round(d.horizon_h * 60 / step_min)), d.coarse_step_min // step_min)
        self.demand_charge_cny_per_kw_month = exogenous.demand_charge_cny_per_kw_month
        self.month_of_step, self.month_share = calendar_months(self.timeline.index, self.timeline.dt_h)
        accounts = 1 if d.settlement == "vpp" else len(self.nodes)
        self.peak_so_far_kw, self.peak_month = np.zeros(accounts), 0
        self.net_import_prev_kw = 0.0
        self.recorder = Recorder(scenario, fleets, self.timeline)
        self.decision, self.decision_k0 = Decision(), 0
        # what the dispatcher sent against what the assets delivered, per fleet (sources' caps left out)
        self.delivered_kw = np.full((len(fleets), self.timeline.n_steps), np.nan)
        self.setpoint_kwh = np.zeros((len(fleets), 3))         # planned, delivered, |error| summed over rows
        self.n_setpoints = {f.name: f.n_setpoints for f in fleets}
        self.links = self._links(scenario, fleets)
        self.telemetry_steps = int(round(scenario.comms.telemetry_delay_min * 60 / self.timeline.step_s))
        self._seen: dict[int, list[Fleet]] = {}           # snapshots of the fleets by the step they were taken
        self.outage_draws = {
            f.name: OutageDraw(f.n_assets, scenario.outages[f.name].mtbf_h / self.timeline.dt_h,
                               scenario.outages[f.name].mttr_h / self.timeline.dt_h, self.timeline.n_steps,
                               component_rng(scenario.seed, f"outages:{f.name}"))
            for f in fleets if f.name in scenario.outages}

    def _links(self, scenario: Scenario, fleets: list[Fleet]) -> dict[str, SetpointLink]:
        """A :class:`~vpp.comms.SetpointLink` per fleet behind ``[comms]`` (none for a perfect network)."""
        cfg = scenario.comms
        if cfg.perfect:
            return {}
        links = {f.name: cfg.link(f.name) for f in fleets if cfg.crosses(f.name)}
        return {f.name: SetpointLink(f.n_setpoints, links[f.name].loss_prob, links[f.name].latency_s,
                                     links[f.name].timeout_min * 60.0, self.timeline.step_s,
                                     component_rng(scenario.seed, f"comms:{f.name}"), self.timeline.n_steps)
                for f in fleets if f.name in links}

    def comms_table(self):
        """Each linked fleet's message and row-step counts (:data:`vpp.comms.COUNT_COLUMNS`)."""
        import pandas as pd

        rows = [{"fleet": name, **link.counts()} for name, link in self.links.items()]
        return pd.DataFrame(rows, columns=["fleet", *COUNT_COLUMNS])

    def comms_steps(self):
        """Per step and linked fleet that was sent anything: the setpoints the dispatcher sent
        and those of the VPP in force at the assets, fresh or held (sums over rows, rows on
        their baseline left out; NaN where a cap of ``inf``, no schedule, or every row on its
        baseline), the controllable power the assets delivered for the rows sent a finite
        setpoint (NaN for sources, whose setpoints are caps), and the shares of rows
        holding an old setpoint or on their baseline."""
        import pandas as pd

        row = {f.name: j for j, f in enumerate(self.fleets)}
        frames = [pd.DataFrame({"time": self.timeline.index, "fleet": name, "planned_kw": link.planned_kw,
                                "applied_kw": link.applied_kw, "delivered_kw": self.delivered_kw[row[name]],
                                "held_frac": link.held_frac, "fallback_frac": link.fallback_frac})
                  for name, link in self.links.items() if link.counts()["messages_sent"]]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["time", "fleet", "planned_kw", "applied_kw", "delivered_kw", "held_frac", "fallback_frac"])

    def _node_index(self, name: str) -> int:
        return [n.name for n in self.nodes].index(name)

    # -- processes -------------------------------------------------------
    def run(self):
        """Simulate every step; returns the :class:`~vpp.recorder.Recorder`."""
        env = self.start()
        env.run(until=self.timeline.n_steps * self.timeline.step_s)
        return self.recorder

    def start(self) -> simpy.Environment:
        """The SimPy environment with every process started and nothing simulated:
        ``env.run(until=k * step_s)`` simulates the steps before *k* (and the
        dispatch at *k* is the next thing to run), so a caller can advance the run
        interval by interval (:class:`vpp.gym.VPPEnv`)."""
        env = simpy.Environment()
        tl = self.timeline
        for fleet in self.fleets:
            steps = fleet.event_steps()
            if len(steps):
                env.process(self._events(env, fleet, steps))
            requests = fleet.arrival_requests()
            if requests is not None:
                start_queue(env, fleet, requests, tl.step_s, tl.n_steps)
        if self.calls.configs:
            env.process(self._announce(env))
        if self.trading is not None:
            env.process(self._gates(env))
        if self.telemetry_steps and self.strategy.uses_forecasts:
            env.process(self._telemetry(env))
        env.process(self._dispatcher(env))
        env.process(self._clock(env))
        return env

    def _wait_for_step(self, env, k: int, phase: int):
        return at_step(env, k, self.timeline.step_s, phase)

    def _events(self, env, fleet: Fleet, steps):
        for k in steps:
            if k >= self.timeline.n_steps:
                return
            yield self._wait_for_step(env, int(k), EVENTS)
            fleet.apply_events(int(k))

    def _gates(self, env):
        """Day-ahead gate closures: the strategy commits each day's net import."""
        for k, d0, d1 in self.trading.gates():
            if k >= self.timeline.n_steps:
                return
            yield self._wait_for_step(env, k, EVENTS)
            schedule = self._schedule(k, d0, d1)
            self.trading.commit(d0, d1, schedule)
            self.recorder.event(k, "da_commit", f"{self.timeline.time_of(d0):%Y-%m-%d}: mean position "
                                f"{float(np.mean(schedule)):,.0f} kW")

    def _schedule(self, k: int, d0: int, d1: int) -> np.ndarray:
        """The strategy's commitment for steps ``d0 .. d1 - 1`` made at step *k*
        (its window reaching the end of the day); where it makes none, the
        persistence forecast: each step's import at the same time on the latest
        metered day, and before anything is metered the window's inflexible
        forecast (fixed loads less available green power). [kW]"""
        horizon = max(d1 - k, self.cadence.horizon_steps)
        problem = self.problem(k, horizon) if self.strategy.uses_forecasts else None
        made = self.strategy.commit_kw(problem, d0, d1) if problem is not None else None
        if made is not None:
            made = np.asarray(made, dtype=float)
            if made.shape != (d1 - d0,) or not np.isfinite(made).all():
                raise RuntimeError(f"{self.strategy.name}: the day-ahead commitment for steps {d0}..{d1 - 1} "
                                   f"(shape {made.shape}) is not finite with one value per step")
            return made
        per_day = int(round(24 / self.timeline.dt_h))
        metered = self.recorder.net_import_kw(k)
        out = np.empty(d1 - d0)
        for i, j in enumerate(range(d0, d1)):
            back = j - per_day * int(np.ceil((j - k + 1) / per_day))
            out[i] = metered[back] if 0 <= back < k else np.nan
        if np.isnan(out).any():
            problem = problem or self.problem(k, horizon)
            fixed = -sum(f.p_kw for f in problem.forms if isinstance(f, FixedProfile))
            green = sum(f.p_max_kw.sum(axis=0) for f in problem.forms if isinstance(f, CurtailableSource))
            inflexible = np.asarray(fixed - green, dtype=float) * np.ones(problem.grid.n_blocks)
            block = np.searchsorted(problem.grid.starts, np.arange(d0, d1) - k, side="right") - 1
            out = np.where(np.isnan(out), inflexible[block], out)
        return out

    def _announce(self, env):
        """Demand-response calls, each at its notice (before that step's dispatch)."""
        for k, i in self.calls.schedule():
            if k >= self.timeline.n_steps:
                return
            yield self._wait_for_step(env, k, EVENTS)
            e = self.calls.announce(i, k, self.recorder.net_import_kw(k))
            offer = ""
            if self.strategy.uses_forecasts:
                bid = self.strategy.bid_kw(self.problem(k), e)
                if bid is not None:
                    offer = f"; offered {self.calls.set_bid(e, bid).capacity_kw:,.0f} kW"
            self.recorder.event(k, "dr_notice", f"{e.name}: {e.kind} {e.capacity_kw:,.0f} kW from "
                                f"{self.timeline.time_of(e.start_step)} to {self.timeline.time_of(e.end_step)}"
                                + offer)

    def _telemetry(self, env):
        """Snapshots of the fleets at the start of each step a dispatch will see as its telemetry."""
        every, d = self.cadence.interval_steps, self.telemetry_steps
        for s in sorted({max(k - d, 0) for k in range(0, self.timeline.n_steps, every)}):
            yield self._wait_for_step(env, s, EVENTS)
            self._seen[s] = [snapshot(f) for f in self.fleets]
            for old in [t for t in self._seen if t < s - d - every]:
                del self._seen[old]

    def _fleets_seen(self, k: int) -> list[Fleet]:
        """The fleets as the strategy knows them at step *k*: their latest telemetry, taken at or
        before ``k - telemetry delay`` (the fleets themselves without a delay)."""
        if not self.telemetry_steps or not self._seen:
            return self.fleets
        taken = [s for s in self._seen if s <= max(k - self.telemetry_steps, 0)]
        return self._seen[max(taken) if taken else min(self._seen)]

    def _dispatcher(self, env):
        every = self.cadence.interval_steps
        for k in range(0, self.timeline.n_steps, every):
            yield self._wait_for_step(env, k, DISPATCH)
            self._dispatch(k)

    def _clock(self, env):
        for k in range(self.timeline.n_steps):
            yield self._wait_for_step(env, k, CLOCK)
            self._step(k)
            if k == self.timeline.n_steps - 1 and self.outage_draws:
                self._apply_outages(None)           # every asset gets its ratings back, for the records
            if self.progress is not None:
                self.progress(k + 1, self.timeline.n_steps)

    # -- dispatch --------------------------------------------------------
    def problem(self, k: int, horizon_steps: int | None = None) -> DispatchProblem:
        """The dispatch problem a strategy sees at step *k* (forecasts, forms, limits),
        over the scenario's horizon or *horizon_steps*."""
        c = self.cadence
        grid = HorizonGrid.build(k, self.timeline.dt_h, c.fine_steps, horizon_steps or c.horizon_steps,
                                 c.coarse_steps)
        fc = self.forecaster.forecast(self.exo, k, grid.n_steps)
        forms = tuple(form for fleet in self._fleets_seen(k) for form in fleet.flexibility(grid, fc))
        price_imp, price_exp = grid.mean(fc.price_import_cny_per_kwh), grid.mean(fc.price_export_cny_per_kwh)
        market = {}
        if self.trading is not None:
            steps = slice(k, k + grid.n_steps)
            price_imp = price_exp = grid.mean(self.trading.da[steps])    # the expected real-time price
            cfg = self.scenario.market
            market = dict(position_kw=grid.mean(self.trading.position_kw[steps]),
                          deviation_tolerance_frac=cfg.tolerance_frac,
                          deviation_penalty_cny_per_kwh=cfg.penalty_cny_per_kwh)
        return DispatchProblem(
            grid=grid, nodes=self.nodes, forms=forms,
            price_import_cny_per_kwh=price_imp,
            price_export_cny_per_kwh=price_exp,
            co2_kg_per_kwh=grid.mean(fc.co2_kg_per_kwh),
            peak_import_so_far_kw=self._peak_so_far_kw(k),
            demand_charge_cny_per_kw=self._demand_charge_cny_per_kw(k),
            settlement=self.scenario.dispatch.settlement,
            vpp_import_limit_kw=_or_inf(self.scenario.grid.vpp_import_limit_kw),
            vpp_export_limit_kw=_or_inf(self.scenario.grid.vpp_export_limit_kw),
            ramp_limit_kw_per_h=_or_inf(self.scenario.grid.ramp_limit_kw_per_h),
            net_import_prev_kw=self.net_import_prev_kw,
            dr_events=self.calls.active(k), **market,
        )

    def _dispatch(self, k: int) -> None:
        if self.strategy.uses_forecasts and self.forecaster.feed_down(k * self.timeline.dt_h):
            self.recorder.event(k, "forecast_dropout", "weather forecast feed down: planned on persistence "
                                "(same time on the last day)")
        problem = self.problem(k) if self.strategy.uses_forecasts else None
        decision = self.strategy.decide(problem)
        decision.check(self.n_setpoints, self.strategy.name)
        self.recorder.dispatch(k, decision)
        if decision.fallback:
            self.recorder.event(k, "fallback", f"{self.strategy.name}: {decision.status}; baseline ran instead")
            decision = Decision(status="fallback")
        self.decision, self.decision_k0 = decision, k
        for name, link in self.links.items():
            link.send(k, decision.setpoints.get(name))

    def _sent(self, fleet: Fleet, k: int) -> np.ndarray | None:
        """What the dispatcher sent *fleet* for step *k* (``None``: nothing)."""
        sp = self.decision.setpoints.get(fleet.name)
        j = k - self.decision_k0
        if sp is None or j >= sp.shape[1]:
            return None
        return sp[:, j]

    def _setpoint(self, fleet: Fleet, k: int):
        link = self.links.get(fleet.name)
        if link is not None:
            return link.setpoint(k, lambda: fleet.baseline_setpoint(k))
        return self._sent(fleet, k)

    def _track_setpoints(self, k: int) -> None:
        """Step *k*'s setpoints sent against the controllable power delivered for them
        (after guards, breakers, outages and the network), over each fleet's finite rows;
        a curtailable source's setpoint is a cap, not a power, and is left out."""
        dt = self.timeline.dt_h
        for j, fleet in enumerate(self.fleets):
            sent = None if fleet.curtailable else self._sent(fleet, k)
            if sent is None:
                continue
            rows = np.isfinite(sent)
            if not rows.any():
                continue
            delivered = np.asarray(fleet.controllable_kw(), dtype=float)[rows]
            self.delivered_kw[j, k] = delivered.sum()
            self.setpoint_kwh[j] += (sent[rows].sum() * dt, delivered.sum() * dt,
                                     np.abs(sent[rows] - delivered).sum() * dt)

    def setpoints_table(self):
        """Per fleet that was sent setpoints (sources left out): the energy the setpoints
        asked for, what the assets delivered for them, and the two apart row by row, in
        generator sign (``planned_kwh``, ``delivered_kwh``, ``error_kwh``). [kWh]"""
        import pandas as pd

        sent = ~np.isnan(self.delivered_kw).all(axis=1)
        return pd.DataFrame({"fleet": [f.name for f, s in zip(self.fleets, sent, strict=True) if s],
                             "planned_kwh": self.setpoint_kwh[sent, 0], "delivered_kwh": self.setpoint_kwh[sent, 1],
                             "error_kwh": self.setpoint_kwh[sent, 2]})

    # -- physics ---------------------------------------------------------
    def outages_table(self):
        """Every drawn outage that started in the run: fleet, asset, start, end."""
        import pandas as pd

        frames = [draw.table(name, self.timeline.index) for name, draw in self.outage_draws.items()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["fleet", "asset", "start", "end"])

    def _apply_outages(self, k: int | None) -> None:
        """Each fleet's assets down at step *k* lose what an outage stops (``None``: none is down)."""
        for fleet in self.fleets:
            if fleet.name in self.outage_draws:
                draw = self.outage_draws[fleet.name]
                fleet.set_outage(draw.down(k) if k is not None else np.zeros(fleet.n_assets, dtype=bool))

    def _step(self, k: int) -> None:
        """One step: loads, then storage (guarded), then curtailable sources (limited)."""
        if self.outage_draws:
            self._apply_outages(k)
        n_nodes = len(self.nodes)
        p_kw = np.zeros(len(self.fleets))
        available = np.full(len(self.fleets), np.nan)
        for j, fleet in enumerate(self.fleets):
            if not fleet.curtailable and fleet.role != "storage":
                p_kw[j] = fleet.step(k, self._setpoint(fleet, k)).sum()
        caps, green = {}, np.zeros(n_nodes)
        for j, fleet in enumerate(self.fleets):
            if fleet.curtailable:
                avail = fleet.available_kw(k)
                sp = self._setpoint(fleet, k)
                caps[j] = avail if sp is None else np.minimum(avail, np.maximum(sp, 0.0))
                available[j] = avail.sum()
                green[self.node_of[j]] += caps[j].sum()
        net_loads = np.bincount(self.node_of, weights=p_kw, minlength=n_nodes)
        self._step_storage(k, p_kw, net_loads, green)
        net_fixed = np.bincount(self.node_of, weights=p_kw, minlength=n_nodes)
        scale = self._export_limiter(net_fixed, green)
        curtailed = np.zeros(n_nodes)                     # what the strategy's caps and the limiter withheld
        for j, cap in caps.items():
            granted = cap * scale[self.node_of[j]]
            p_kw[j] = self.fleets[j].step(k, granted).sum()
            curtailed[self.node_of[j]] += available[j] - granted.sum()
        net = np.bincount(self.node_of, weights=p_kw, minlength=n_nodes)
        shed, unserved = self._breaker(k, p_kw, net)
        self._track_setpoints(k)
        self._track_peak(k, net)
        self.recorder.step(k, available, net, curtailed, self.fleets, shed, unserved)

    def _step_storage(self, k: int, p_kw: np.ndarray, net_loads: np.ndarray, green: np.ndarray) -> None:
        """Step storage fleets, scaling their setpoints down where a node would
        otherwise import or export beyond its limit (the connection-point
        guard a real storage controller runs; it never adds to a violation
        that the loads alone cause)."""
        js = [j for j, f in enumerate(self.fleets) if f.role == "storage"]
        if not js:
            return
        requests = {}
        for j in js:
            fleet = self.fleets[j]
            sp = self._setpoint(fleet, k)
            requests[j] = np.nan_to_num(fleet.baseline_setpoint(k) if sp is None else sp, nan=0.0)
        charge = np.zeros(len(self.nodes))
        discharge = np.zeros(len(self.nodes))
        for j, r in requests.items():
            charge[self.node_of[j]] += np.clip(-r, 0.0, None).sum()
            discharge[self.node_of[j]] += np.clip(r, 0.0, None).sum()
        imp_lim = np.array([n.import_limit_kw for n in self.nodes])
        exp_lim = np.array([n.export_limit_kw for n in self.nodes])
        charge_room = np.maximum(imp_lim + net_loads + green + discharge, 0.0)
        discharge_room = np.maximum(exp_lim - net_loads + charge, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            f_charge = np.where(charge > charge_room, charge_room / charge, 1.0)
            f_discharge = np.where(discharge > discharge_room, discharge_room / discharge, 1.0)
        for j, r in requests.items():
            n = self.node_of[j]
            sp = np.where(r < 0, r * f_charge[n], r * f_discharge[n])
            p_kw[j] = self.fleets[j].step(k, sp).sum()

    def _breaker(self, k: int, p_kw: np.ndarray, net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hard node limits: where the node imports beyond its limit, cut its
        loads' draw (flexible first, pro rata over fleets, then fixed) until it
        does not.  Storage and sources already keep within the limits, so only
        loads can cause it.  Updates *p_kw* and *net* in place; returns the power
        cut per node and the part of it that was fixed load (unserved). [kW]"""
        shed, unserved = np.zeros(len(self.nodes)), np.zeros(len(self.nodes))
        excess = -net - self.hard_import_limit_kw
        for n in np.flatnonzero(excess > BREAKER_TOL_KW):
            js = [j for j in np.flatnonzero(self.node_of == n) if self.fleets[j].role == "load"]
            draws = np.array([self.fleets[j].draw_kw() for j in js]).reshape(-1, 2)
            flexible, fixed = draws.sum(axis=0)
            f_flex = min(excess[n] / flexible, 1.0) if flexible > 0 else 0.0
            rest = excess[n] - f_flex * flexible
            f_fixed = min(rest / fixed, 1.0) if fixed > 0 and rest > 0 else 0.0
            drawn = -p_kw[js].sum()
            for j in js:
                p_kw[j] = self.fleets[j].trip(k, f_flex, f_fixed).sum()
            net[n] = np.bincount(self.node_of, weights=p_kw, minlength=len(self.nodes))[n]
            left = -net[n] - self.hard_import_limit_kw[n]
            if left > BREAKER_TOL_KW * max(1.0, abs(net[n])) * 1e3:
                names = ", ".join(self.fleets[j].name for j in js)
                raise RuntimeError(f"step {k}: node {self.nodes[n].name!r} still imports {left:.6g} kW beyond its "
                                   f"hard limit after its loads ({names}) were cut; a fleet's trip() does not "
                                   "cut what its draw_kw() offers")
            shed[n], unserved[n] = drawn + p_kw[js].sum(), f_fixed * fixed
        return shed, unserved

    def _export_limiter(self, net_fixed: np.ndarray, requested: np.ndarray) -> np.ndarray:
        """Per-node factor on curtailable output so that exports respect the limit."""
        limit = np.array([n.export_limit_kw for n in self.nodes])
        room = limit - net_fixed
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(requested > room, np.clip(room / requested, 0.0, 1.0), 1.0)
        return np.nan_to_num(scale, nan=1.0)

    def _month(self, k: int) -> int:
        """Step *k*'s calendar month in the run (a step beyond the run: the last month's)."""
        return int(self.month_of_step[min(k, self.timeline.n_steps - 1)])

    def _demand_charge_cny_per_kw(self, k: int) -> float:
        """What a kW of peak costs in step *k*'s calendar month: the monthly
        charge times the share of the month the run covers (the bill is monthly)."""
        return self.demand_charge_cny_per_kw_month * float(self.month_share[self._month(k)])

    def _peak_so_far_kw(self, k: int) -> np.ndarray:
        """The billed peak so far of step *k*'s month (zero at a month's first step). [kW]"""
        same = self._month(k) == self.peak_month
        return self.peak_so_far_kw.copy() if same else np.zeros_like(self.peak_so_far_kw)

    def _track_peak(self, k: int, net_kw: np.ndarray) -> None:
        """Highest settled import so far in step *k*'s calendar month (per account), for the demand charge."""
        if self._month(k) != self.peak_month:                            # a new month, a new bill
            self.peak_so_far_kw, self.peak_month = np.zeros_like(self.peak_so_far_kw), self._month(k)
        vpp = self.scenario.dispatch.settlement == "vpp"
        settled = np.array([-net_kw.sum()]) if vpp else -net_kw
        self.peak_so_far_kw = np.maximum(self.peak_so_far_kw, settled)
        self.net_import_prev_kw = float(-net_kw.sum())
