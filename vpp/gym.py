"""A Gymnasium environment over the same engine: an agent dispatches the VPP's fleets.

``VPPEnv(scenario)`` steps one dispatch interval (``[dispatch] interval_min``) per
``step``.  The simulation is the engine of :func:`vpp.run` -- the same fleets,
forecasts, queues and grid limits -- with the agent in the strategy's place.

========================  =====================================================
action                    one value in ``[-1, 1]`` per controllable fleet
                          (:attr:`VPPEnv.fleets`: those offering storage-like or
                          thermal flexibility), held over the interval.  Storage,
                          EV sessions and deferrable work: ``a > 0`` discharges
                          ``a`` times the fleet's most discharge, ``a < 0`` charges
                          ``|a|`` times its most charge; buildings and AC
                          populations: HVAC power ``(1 - a) / 2`` times the most.
                          The fleet power is split among the assets within each
                          one's limits as ``virtual_battery`` does (least laxity
                          first for fleets that cannot discharge, pro rata for
                          the others, comfort need first for buildings), so no
                          action breaks an asset's limits.  ``None`` lets the
                          *delegate* strategy decide the interval.
observation               ``float32``: the time of day and of year (sine and
                          cosine); the window's import price [CNY/kWh] and carbon
                          intensity [kg/kWh] per block; the forecast green power
                          available and the inflexible load per block [MW]; per
                          controllable fleet its energy as a share of its upper
                          bound (or, for buildings, the mean room temperature
                          less 20 degC, over 10) and its most charge and
                          discharge (or HVAC power) in the first block [MW]
reward                    minus the interval's cost [CNY]: the settled import at
                          the import price less the export at the export price,
                          the demand charge as the month's billed peak rises
                          (as :func:`vpp.kpi.cost_series` accrues it), the carbon
                          price times the CO2 of the import, and penalties for
                          EV and batch energy not served and for occupied-hours
                          discomfort
========================  =====================================================

``reset(seed=s)`` runs the scenario with seed *s* (weather, sessions, forecast
errors): the scenario's seeds are the environment's.  :meth:`VPPEnv.results` gives
the episode's :class:`~vpp.results.Results` (no baseline attached).  Markets are not
supported (a scenario with ``[market] mode = "two_settlement"`` is refused).

Needs ``gymnasium`` (``pip install "vpp-sim[rl]"`` brings it with an RL library).
"""

from __future__ import annotations

import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
except ImportError as e:                                       # pragma: no cover - the [rl] extra
    raise ImportError("vpp.gym needs gymnasium: pip install 'vpp-sim[rl]' (or gymnasium)") from e

from vpp import api
from vpp.dispatch import Decision
from vpp.flex import CurtailableSource, FixedProfile, StorageLike, Thermal
from vpp.optimizer.base import Strategy
from vpp.optimizer.virtual_battery import disaggregate_storage, disaggregate_thermal, shared_limit

__all__ = ["VPPEnv", "AgentStrategy"]

MW = 1e-3   # observation scale of powers [MW per kW]
OBS_BOUND = 1e6     # every observation's magnitude is below this (powers in MW, prices in CNY/kWh)


class AgentStrategy(Strategy):
    """The strategy slot the environment's agent fills: setpoints from :attr:`action`,
    or the *delegate*'s decision when the action is ``None``."""

    name = "gym_agent"

    def __init__(self, fleets: list[str], delegate: Strategy | None = None):
        super().__init__()
        self.fleets, self.delegate = fleets, delegate
        self.action: np.ndarray | None = None

    def decide(self, problem) -> Decision:
        if self.action is None:
            if self.delegate is None:
                return Decision(status="uncontrolled")
            return self.delegate.decide(problem)
        n = problem.grid.n_fine
        setpoints = {}
        for f in problem.forms:
            if f.fleet not in self.fleets or not getattr(f, "n_assets", 0):
                continue
            a = float(self.action[self.fleets.index(f.fleet)])
            if isinstance(f, StorageLike):
                most = f.p_discharge_max_kw[:, 0].sum() if a >= 0 else f.p_charge_max_kw[:, 0].sum()
                can_discharge = bool(np.any(np.asarray(f.p_discharge_max_kw) > 0))
                setpoints[f.fleet] = disaggregate_storage(f, problem.grid, np.full(n, a * most),
                                                          "pro_rata" if can_discharge else "least_laxity",
                                                          shared_limit(problem, f))
            elif isinstance(f, Thermal):
                hvac = (1.0 - a) / 2.0 * f.p_max_kw[:, 0].sum()
                setpoints[f.fleet] = -disaggregate_thermal(f, problem.grid, np.full(n, hvac), "need")
        return Decision(setpoints=setpoints, status="optimal")

    def bid_kw(self, problem, event):
        return self.delegate.bid_kw(problem, event) if self.delegate is not None else None


class VPPEnv(gymnasium.Env):
    """The VPP as a Gymnasium environment (module docstring).

    Parameters
    ----------
    scenario : path or Scenario, optional
        Default: the embedded ``shanghai_lingang.toml``.
    delegate : str or Strategy, optional
        The strategy that decides an interval whose action is ``None`` (e.g.
        ``"rule_based"``, to compare an agent with it or to start from it).
    carbon_price_cny_per_t : float
        Carbon price in the reward. [CNY/t]
    unserved_cny_per_kwh, discomfort_cny_per_kh : float
        Penalties in the reward for EV and batch energy not served [CNY/kWh] and
        occupied-hours discomfort [CNY/(K h)] (assumptions: above any tariff).
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario=None, *, delegate: str | Strategy | None = None,
                 carbon_price_cny_per_t: float = 100.0, unserved_cny_per_kwh: float = 5.0,
                 discomfort_cny_per_kh: float = 50.0):
        self.scenario = api.load(scenario)
        if self.scenario.market.mode == "two_settlement":
            raise ValueError("VPPEnv does not support the day-ahead market yet ([market] mode)")
        self.source = api._source(self.scenario, scenario)
        self._delegate_spec = delegate
        self.carbon_price_cny_per_t = carbon_price_cny_per_t
        self.unserved_cny_per_kwh, self.discomfort_cny_per_kh = unserved_cny_per_kwh, discomfort_cny_per_kh
        self._build(self.scenario.seed)
        problem = self.engine.problem(0)
        self.fleets = list(dict.fromkeys(f.fleet for f in problem.forms if isinstance(f, StorageLike | Thermal)))
        self.strategy.fleets = self.fleets
        self.action_space = spaces.Box(-1.0, 1.0, shape=(len(self.fleets),), dtype=np.float32)
        dim = len(self._observe(problem))
        self.observation_space = spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(dim,), dtype=np.float32)

    # -- the run ---------------------------------------------------------
    def _build(self, seed: int) -> None:
        sc = self.scenario.model_copy(update={"seed": int(seed)})
        self.prep = api._prepare(sc, self.source)
        self.exo = api.build_exogenous(sc)
        delegate = None if self._delegate_spec is None else api._strategy(self.prep, self._delegate_spec, "delegate")
        self.strategy = AgentStrategy(getattr(self, "fleets", []), delegate)
        self.engine = api._engine(self.prep, self.strategy, self.exo, None)
        self.sim = self.engine.start()
        tl = self.engine.timeline
        self.k, self.n_steps, self.step_s, self.dt_h = 0, tl.n_steps, tl.step_s, tl.dt_h
        self.every = self.engine.cadence.interval_steps
        self.peak_kw, self.peak_month = None, None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._build(self.scenario.seed if seed is None else seed)
        return self._observe(self.engine.problem(0)), {"step": 0}

    def step(self, action):
        if self.k >= self.n_steps:
            raise RuntimeError("the episode has ended: call reset()")
        self.strategy.action = None if action is None else np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        k0, k1 = self.k, min(self.k + self.every, self.n_steps)
        self.sim.run(until=k1 * self.step_s)
        self.k = k1
        cost, parts = self._cost(k0, k1)
        done = k1 >= self.n_steps
        obs = self._observe(self.engine.problem(k1)) if not done else np.zeros(self.observation_space.shape,
                                                                                 dtype=np.float32)
        return obs, -cost, done, False, {"step": k1, **parts}

    def results(self):
        """The episode so far as :class:`~vpp.results.Results` (strategy ``gym_agent``)."""
        return api.results_of(self.engine, self.strategy.name, self.prep, self.exo)

    # -- observation and reward ----------------------------------------------
    def _observe(self, problem) -> np.ndarray:
        t = self.engine.timeline.time_of(min(problem.grid.k0, self.n_steps - 1))
        hour, day = t.hour + t.minute / 60.0, t.day_of_year
        time = [np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24),
                np.sin(2 * np.pi * day / 366), np.cos(2 * np.pi * day / 366)]
        green = sum((f.p_max_kw.sum(axis=0) for f in problem.forms if isinstance(f, CurtailableSource)),
                    np.zeros(problem.grid.n_blocks))
        fixed = -sum((np.asarray(f.p_kw, dtype=float) for f in problem.forms if isinstance(f, FixedProfile)),
                     np.zeros(problem.grid.n_blocks))
        per_fleet = []
        for name in self.fleets:
            forms = [f for f in problem.forms if f.fleet == name and isinstance(f, StorageLike | Thermal)]
            per_fleet += _fleet_features(forms[0] if forms else None)
        return np.concatenate([time, problem.price_import_cny_per_kwh, problem.co2_kg_per_kwh, green * MW,
                               fixed * MW, per_fleet]).astype(np.float32)

    def _cost(self, k0: int, k1: int) -> tuple[float, dict]:
        """The interval's cost and its parts. [CNY]"""
        e, x, dt = self.engine, self.exo, self.dt_h
        node_net = e.recorder.node_net_kw[k0:k1]
        if self.scenario.dispatch.settlement == "vpp":
            net = -node_net.sum(axis=1)
            imp, exp, account = np.maximum(net, 0.0), np.maximum(-net, 0.0), np.maximum(net, 0.0)[:, None]
        else:
            imp, exp = np.maximum(-node_net, 0.0).sum(axis=1), np.maximum(node_net, 0.0).sum(axis=1)
            account = np.maximum(-node_net, 0.0)
        steps = slice(k0, k1)
        energy = float((imp * x.price_import_cny_per_kwh[steps]).sum() * dt)
        revenue = float((exp * x.price_export_cny_per_kwh[steps]).sum() * dt)
        co2_t = float((imp * x.co2_kg_per_kwh[steps]).sum() * dt) / 1e3
        demand = 0.0
        for i, k in enumerate(range(k0, k1)):                # the month's billed peak so far
            month = e._month(k)
            if month != self.peak_month or self.peak_kw is None:
                self.peak_kw, self.peak_month = np.zeros(account.shape[1]), month
            rise = np.maximum(account[i] - self.peak_kw, 0.0)
            demand += float(rise.sum()) * e._demand_charge_cny_per_kw(k)
            self.peak_kw = np.maximum(self.peak_kw, account[i])
        unserved = self._state_sum(k0, k1, ("ev_energy_unserved_kwh", "batch_energy_unserved_kwh"))
        unserved += float(e.recorder.unserved_kw[k0:k1].sum()) * dt
        discomfort = self._state_sum(k0, k1, ("comfort_violation_kh",))
        parts = {"energy_cny": energy, "export_revenue_cny": revenue, "demand_charge_cny": demand,
                 "carbon_cny": self.carbon_price_cny_per_t * co2_t,
                 "unserved_cny": self.unserved_cny_per_kwh * unserved,
                 "discomfort_cny": self.discomfort_cny_per_kh * discomfort}
        return energy - revenue + demand + parts["carbon_cny"] + parts["unserved_cny"] + parts["discomfort_cny"], \
            parts

    def _state_sum(self, k0: int, k1: int, columns) -> float:
        total = 0.0
        for fleet in self.engine.fleets:
            for c in columns:
                if c in fleet.state_columns:
                    total += float(self.engine.recorder.state[fleet.name][k0:k1, fleet.state_columns.index(c)].sum())
        return total


def _fleet_features(form) -> list[float]:
    """Energy share (or room temperature), most charge and most discharge in the first block."""
    if form is None or not getattr(form, "n_assets", 0):
        return [0.0, 0.0, 0.0]
    if isinstance(form, Thermal):
        temp = float(np.mean(np.asarray(form.temp_init_c)[:, 0]))
        return [(temp - 20.0) / 10.0, float(form.p_max_kw[:, 0].sum()) * MW, 0.0]
    e_hi = float(np.asarray(form.e_max_kwh)[:, 0].sum())
    e = float(np.sum(form.e_init_kwh))
    return [e / e_hi if e_hi > 0 else 0.0, float(form.p_charge_max_kw[:, 0].sum()) * MW,
            float(form.p_discharge_max_kw[:, 0].sum()) * MW]
