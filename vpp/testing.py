"""Conformance suites for fleets and strategies, after scikit-learn's ``check_estimator``.

Every built-in fleet type and strategy passes them (the project's tests run
them), and a researcher's own can run them too::

    from vpp.testing import check_fleet, check_strategy
    check_fleet(MyFleet, params={"p_max_kw": 100.0})   # a Fleet subclass or a registered type name
    check_strategy(MyStrategy())                       # a Strategy, its class or a registered name

Each raises ``AssertionError`` naming the check that failed and why.  For one
test per check (pytest), :func:`fleet_checks` and :func:`strategy_checks`
return the checks as callables, and :func:`parametrize_with_checks` makes the
pytest decorator::

    @parametrize_with_checks([MyFleet, MyStrategy()])
    def test_conformance(check):
        check()

What the suites hold a fleet to: output of the right shape and sign by role
for any setpoint (NaN and infinities included); its own limits (a request
beyond them is clipped, so a larger one changes nothing); the same output
under the same seed; flexibility forms of the right shape; a curtailable
source capped exactly; a load cut exactly by a hard node limit's breaker
(:meth:`~vpp.assets.base.Fleet.trip`); a type with an outage model unchanged
when told no asset is down, and honest with some down; and *honesty* -- the fleet alone is optimised against
random prices with a perfect forecast, the plan is sent to its physics step by
step, and it must come out as planned.

What they hold a strategy to, on a small two-day district with one
demand-response call: energy balance at
every node and step (recomputed from the fleets' outputs and the recorded
exchange, :func:`check_balance`), assets within their limits and no fallback;
raw setpoints -- what the strategy returned, before any fleet clips them --
inside the forms offered in that window (:func:`check_setpoints`); the same
setpoints and results under the same seed; and a one-line error naming the
field for a misconfigured option.

This module is orchestration (it runs fleets, strategies and the engine);
it needs neither pytest nor Hypothesis: its random draws are seeded numpy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import simpy

import vpp.api
from vpp.assets import FLEET_TYPES, Fleet, FleetContext
from vpp.dispatch import Decision, DispatchProblem, NodeLimits
from vpp.errors import ScenarioError
from vpp.exogenous import Exogenous, build_exogenous
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, SharedLimit, StorageLike, Thermal
from vpp.optimizer import STRATEGIES, Strategy
from vpp.queueing import start_queue
from vpp.results import Results
from vpp.scenario import MarketConfig, Scenario, StrategyConfig, read_scenario_dict, scenario_from_dict
from vpp.timeline import Timeline

__all__ = [
    "Check",
    "FleetCase",
    "RecordingStrategy",
    "check_balance",
    "check_setpoints",
    "check_fleet",
    "check_strategy",
    "fleet_checks",
    "strategy_checks",
    "parametrize_with_checks",
    "default_strategy_scenario",
    "EventDriver",
]

BALANCE_TOL = 1e-6          # node balance residual, relative to the node's largest power
LIMIT_TOL = 1e-6            # the recorder's tolerance on a limit, relative to the limit
SETPOINT_ATOL_KW = 1e-6     # a setpoint may pass an offered bound by this much ...
SETPOINT_RTOL = 1e-6        # ... plus this share of the bound (interior-point solutions)
SOC_TOL = 1e-9              # state of charge beyond [0, 1] [-]
PLAN_STEPS = 16             # steps of the plan the honesty check sends to the physics
PLAN_ATOL_KW = 1e-3         # interior-point plans sit within ~1e-6 of their bounds
SATURATION_ATOL_KW = 1e-6   # two requests beyond the limits give one output within this ...
SATURATION_RTOL = 1e-9      # ... plus this share of it
RUN_STEPS = 96              # steps a fleet is driven (a day at 15 minutes)
SETPOINTS_ANY = (0.0, 1e9, -1e9, np.inf, -np.inf, np.nan, 123.0, -456.0)   # requests of every kind [kW]
BEYOND_LIMITS_KW = (1e9, 1e12)   # requests beyond any asset's limits: both must give one output
TRIP_STEPS = (12, 45, 60)   # steps at which a load's trip() is checked
TRIP_FRACTIONS = ((0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (0.3, 0.6), (1.0, 1.0))   # (flexible, fixed) cut
TRIP_FOLLOW_STEPS = 12      # steps a trip that cut nothing is followed
TRIP_ATOL_KW = 1e-6         # a trip cuts at least what it is asked, within this [kW] ...
TRIP_OVERCUT_FRAC = 1e-3    # ... and at most this share of the draw more (whole compressors)


# -- checks as objects ------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One conformance check of one fleet or strategy; call it to run it.

    Raises ``AssertionError`` starting with the check's name and subject;
    an exception inside the fleet or strategy is reported the same way.
    """

    name: str
    subject: str
    run: Callable[[], None] = field(repr=False)

    @property
    def id(self) -> str:
        """Test id: ``subject-name``."""
        return f"{self.subject}-{self.name}"

    def __call__(self) -> None:
        if not __debug__:
            raise RuntimeError("the conformance checks are assertions: run Python without -O")
        try:
            self.run()
        except AssertionError as e:
            raise AssertionError(f"{self.name} failed for {self.subject}: {e}") from e
        except Exception as e:  # any crash of the code under check is a failed check
            raise AssertionError(f"{self.name} failed for {self.subject}: raised "
                                 f"{type(e).__name__}: {e}") from e

    def __str__(self) -> str:
        return self.id


def parametrize_with_checks(objects: Iterable):
    """A ``pytest.mark.parametrize("check", ...)`` over every check of *objects*.

    Each object is a :class:`FleetCase`, a :class:`~vpp.assets.Fleet` subclass
    (default parameters), or a :class:`~vpp.optimizer.Strategy` (instance or
    class).  Needs pytest (imported here, not by the module).
    """
    import pytest

    checks = []
    for obj in objects:
        if isinstance(obj, FleetCase) or (isinstance(obj, type) and issubclass(obj, Fleet)):
            checks += fleet_checks(obj)
        elif isinstance(obj, Strategy) or (isinstance(obj, type) and issubclass(obj, Strategy)):
            checks += strategy_checks(obj)
        else:
            raise TypeError(f"not a fleet or strategy: {obj!r}")
    return pytest.mark.parametrize("check", checks, ids=[c.id for c in checks])


# -- fleets -------------------------------------------------------------------

def _conformance_exogenous(seed: int = 0) -> Exogenous:
    """Two days of the synthetic Shanghai summer weather at 15 minutes (one
    simulated day and one day of horizon padding)."""
    data = {"name": "conformance", "seed": seed,
            "time": {"start": "2024-07-22T00:00:00", "end": "2024-07-23T00:00:00", "step_min": 15},
            "nodes": [{"name": "n1", "import_limit_kw": 1e9, "export_limit_kw": 1e9}],
            "fleets": [{"name": "f", "type": "pv", "node": "n1", "count": 1}],
            "dispatch": {"interval_min": 60, "horizon_h": 24}}
    return build_exogenous(scenario_from_dict(data, "<conformance>"))


@dataclass(frozen=True)
class FleetCase:
    """A fleet type with the parameters it is checked with.

    Parameters
    ----------
    fleet : Fleet subclass or str
        The class, or the name it is registered under.
    params : mapping
        ``[fleets.params]`` for the check (default: the type's defaults).
    label : str, optional
        Name in messages and test ids (default: the type name).
    n_assets : int
        Assets in the checked fleet.
    exogenous : Exogenous, optional
        Weather, prices and carbon per step, at least ``2 * 96`` steps; the
        second half is horizon padding.  Default: two days of the synthetic
        Shanghai summer weather at 15 minutes.
    plan_rtol : float
        Relative tolerance of the honesty check (the plan as delivered).
    """

    fleet: type[Fleet] | str
    params: Mapping = field(default_factory=dict)
    label: str | None = None
    n_assets: int = 6
    exogenous: Exogenous | None = None
    plan_rtol: float = 1e-6

    @property
    def cls(self) -> type[Fleet]:
        if isinstance(self.fleet, str):
            if self.fleet not in FLEET_TYPES:
                raise KeyError(f"no fleet type registered as {self.fleet!r} (known: {', '.join(sorted(FLEET_TYPES))})")
            return FLEET_TYPES[self.fleet]
        return self.fleet

    @property
    def name(self) -> str:
        return self.label or getattr(self.cls, "type_name", self.cls.__name__)

    @cached_property
    def exo(self) -> Exogenous:
        return self.exogenous if self.exogenous is not None else _conformance_exogenous()

    def build(self, seed: int = 0) -> Fleet:
        """A fresh fleet of ``n_assets`` assets at node ``n1`` drawn with *seed*."""
        exo, cls = self.exo, self.cls
        if len(exo) < 2 * RUN_STEPS:
            raise ValueError(f"the exogenous series has {len(exo)} steps; the checks need {2 * RUN_STEPS}")
        step_s = int(round(exo.step_h * 3600))
        pad = len(exo) // 2
        start = exo.index[0]
        timeline = Timeline(start, start + pd.Timedelta(seconds=step_s * (len(exo) - pad)), step_s, pad)
        ctx = FleetContext(self.name.replace(":", "_"), "n1", self.n_assets, np.random.default_rng(seed),
                           timeline, exo)
        return cls(ctx, cls.Params.model_validate(dict(self.params)))


class EventDriver:
    """Applies a fleet's discrete events the way the engine does: batched events
    and, for fleets with queueing customers, the SimPy queue of vpp.queueing."""

    def __init__(self, fleet: Fleet):
        self.fleet, self.step_s = fleet, fleet.timeline.step_s
        self.events = set(fleet.event_steps().tolist())
        self.env = simpy.Environment()
        requests = fleet.arrival_requests()
        if requests is not None:
            start_queue(self.env, fleet, requests, self.step_s, fleet.timeline.n_steps)

    def before(self, k: int) -> None:
        """Everything due at the start of step k (before dispatch and physics)."""
        if k in self.events:
            self.fleet.apply_events(k)
        self.env.run(until=k * self.step_s + 1e-6)

    def run_uncontrolled_to(self, k0: int) -> None:
        """Step the fleet uncontrolled (its baseline) up to step *k0*, then apply what
        is due at *k0*: the state a dispatch at *k0* sees."""
        for k in range(k0):
            self.before(k)
            self.fleet.step(k, None)
        self.before(k0)


def _run_any_setpoints(fleet: Fleet, steps: int = RUN_STEPS, rng_seed: int = 1) -> np.ndarray:
    """Step *fleet* with requests drawn from :data:`SETPOINTS_ANY` (every fifth uncontrolled)."""
    rng = np.random.default_rng(rng_seed)
    driver = EventDriver(fleet)
    out = []
    for k in range(steps):
        driver.before(k)
        sp = None if k % 5 == 0 else rng.choice(SETPOINTS_ANY, size=fleet.n_setpoints)
        out.append(np.asarray(fleet.step(k, sp), dtype=float))
    return np.array(out)


def _check_output_shape_and_sign(case: FleetCase) -> None:
    fleet = case.build()
    p = _run_any_setpoints(fleet)
    want = (RUN_STEPS, fleet.n_assets)
    assert p.shape == want, f"step() returned {p.shape[1:]} per step over {p.shape[0]} steps; expected {want[1:]}"
    assert np.isfinite(p).all(), "step() returned NaN or infinite power for some setpoint (NaN and +-inf included)"
    if fleet.role == "source":
        assert (p >= -1e-9).all(), f"a source consumed power (min {p.min():.6g} kW); generator sign: output >= 0"
    if fleet.role == "load":
        assert (p <= 1e-9).all(), f"a load injected power (max {p.max():.6g} kW); generator sign: consumption < 0"
    state = fleet.state()
    assert set(state) == set(fleet.state_columns), \
        f"state() keys {sorted(state)} differ from state_columns {sorted(fleet.state_columns)}"
    assert all(np.isfinite(v) for v in state.values()), f"state() is not finite: {state}"


def _check_limits(case: FleetCase) -> None:
    """At a few steps, requests of 1e9 and 1e12 kW (each sign) must give the same
    output: a fleet honouring its own limits clips both to the same power.  A
    non-finite request (NaN, +-inf; a fleet may read it as "no request") must
    still give finite power."""
    fleet = case.build()
    driver = EventDriver(fleet)
    checked = {10, 40, 70}
    for k in range(max(checked) + 1):
        driver.before(k)
        if k in checked:
            for sign in (1.0, -1.0):
                outs = {}
                for x in BEYOND_LIMITS_KW + (np.inf, np.nan):
                    twin = copy.deepcopy(fleet)
                    outs[x] = np.asarray(twin.step(k, np.full(fleet.n_setpoints, sign * x)), dtype=float)
                    assert np.isfinite(outs[x]).all(), f"step {k}: a setpoint of {sign * x} kW gave {outs[x]} kW"
                small, large = (outs[x] for x in BEYOND_LIMITS_KW)
                ok = np.abs(large - small) <= SATURATION_ATOL_KW + SATURATION_RTOL * np.abs(small)
                assert ok.all(), (f"step {k}: a setpoint of {sign * BEYOND_LIMITS_KW[1]:g} kW per asset gave "
                                  f"{large.sum():.6g} kW but {sign * BEYOND_LIMITS_KW[0]:g} kW gave "
                                  f"{small.sum():.6g} kW: the fleet does not clip requests to its own limits")
        fleet.step(k, None)


def _check_deterministic(case: FleetCase) -> None:
    first, again = _run_any_setpoints(case.build(seed=3)), _run_any_setpoints(case.build(seed=3))
    if not np.array_equal(first, again, equal_nan=True):
        k = int(np.argwhere(~((first == again) | (np.isnan(first) & np.isnan(again))))[0, 0])
        raise AssertionError(f"two fleets drawn with seed 3 and driven alike differ from step {k} "
                             f"({first[k].sum():.6g} vs {again[k].sum():.6g} kW): draw only from the "
                             f"fleet's own generator (FleetContext.rng)")


def _check_forms(case: FleetCase) -> None:
    fleet = case.build()
    grid = HorizonGrid.build(8, fleet.dt_h, 4, RUN_STEPS, 4)
    forecast = fleet.exo.window(grid.k0, grid.n_steps)
    for k in range(8):
        fleet.step(k, None)
    forms = fleet.flexibility(grid, forecast)
    assert forms, "flexibility() offered no form (a fleet offers at least a FixedProfile)"
    for f in forms:
        what = type(f).__name__
        assert f.fleet == fleet.name and f.node == fleet.node, \
            f"{what} names fleet {f.fleet!r} at node {f.node!r}, not {fleet.name!r} at {fleet.node!r}"
        if isinstance(f, FixedProfile):
            assert np.shape(f.p_kw) == (grid.n_blocks,), f"FixedProfile.p_kw has shape {np.shape(f.p_kw)}"
            continue
        if isinstance(f, SharedLimit):
            assert any(isinstance(x, StorageLike) for x in forms), "a SharedLimit groups StorageLike rows; none offered"
            assert f.charge_limit_kw.shape == (f.n_groups, grid.n_blocks), \
                f"SharedLimit.charge_limit_kw has shape {f.charge_limit_kw.shape}"
        assert f.n_assets == fleet.n_setpoints, f"{what} has {f.n_assets} rows, the fleet {fleet.n_setpoints} setpoints"
        if isinstance(f, CurtailableSource):
            assert f.p_max_kw.shape == (fleet.n_assets, grid.n_blocks), f"p_max_kw has shape {f.p_max_kw.shape}"
            assert (f.p_max_kw >= 0).all(), "CurtailableSource.p_max_kw < 0"
        if isinstance(f, StorageLike):
            assert (f.p_charge_max_kw >= 0).all() and (f.p_discharge_max_kw >= 0).all(), \
                "StorageLike power bounds must be >= 0 (magnitudes)"
            assert (f.e_min_kwh <= f.e_max_kwh + 1e-9).all(), "StorageLike e_min_kwh > e_max_kwh"
        if isinstance(f, Thermal):
            assert (f.p_max_kw >= 0).all(), "Thermal.p_max_kw < 0"
            assert (f.temp_min_c <= f.temp_max_c).all(), "Thermal comfort band reversed"


def _caps(rng: np.random.Generator, n: int) -> np.ndarray:
    """Caps of every kind: ordinary, tiny, huge, zero, negative, NaN, infinities."""
    special = np.array([0.0, -0.0, 1e300, -1e300, np.nan, np.inf, -np.inf, 5e-324])
    ordinary = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-3, 5, n)
    return np.where(rng.random(n) < 0.4, rng.choice(special, n), ordinary)


def _check_curtailable_caps(case: FleetCase) -> None:
    """Output = min(available, max(cap, 0)); NaN means no cap."""
    fleet = case.build()
    rng = np.random.default_rng(11)
    driver = EventDriver(fleet)
    for k in range(RUN_STEPS):
        driver.before(k)
        available = np.asarray(fleet.available_kw(k), dtype=float)
        cap = _caps(rng, fleet.n_setpoints)
        p = np.asarray(fleet.step(k, cap), dtype=float)
        want = np.minimum(available, np.where(np.isnan(cap), np.inf, np.maximum(cap, 0.0)))
        assert np.array_equal(p, want), f"step {k}: caps {cap} on available {available} kW gave {p} kW, not {want}"
        got = fleet.state().get("p_available_kw")
        assert got is not None and abs(got - available.sum()) <= 1e-9 * max(1.0, available.sum()), \
            f"step {k}: state()['p_available_kw'] = {got}, available_kw sums to {available.sum()}"


def _check_honest(case: FleetCase) -> None:
    """Optimise the fleet alone against random prices with a perfect forecast, then
    send the plan to the physics step by step: it must come out as planned.  Two
    seeds, each with export paid little (plans serve loads cheaply) and nearly the
    import price (plans move all the energy the forms allow)."""
    for seed, arbitrage in ((0, False), (1, False), (0, True), (1, True)):
        _plan_and_deliver(case, seed, arbitrage)


def _plan_and_deliver(case: FleetCase, seed: int, arbitrage: bool, down: np.ndarray | None = None,
                      paid_to_use: bool = False) -> None:
    """One run of the honesty check; *down*: the assets out (:meth:`Fleet.set_outage`)
    from the dispatch on, through the plan; *paid_to_use*: import prices negated, so
    a plan consumes all the forms allow."""
    from vpp.optimizer.model import DispatchModel, Weights

    fleet = case.build(seed=seed)
    k0 = 30                                          # after some steps, so states are not the initial ones
    driver = EventDriver(fleet)
    driver.run_uncontrolled_to(k0)
    if down is not None:
        fleet.set_outage(down)
    grid = HorizonGrid(k0, np.ones(PLAN_STEPS, dtype=int), fleet.dt_h)
    forms = tuple(fleet.flexibility(grid, fleet.exo.window(k0, PLAN_STEPS)))
    rng = np.random.default_rng(seed)
    price = rng.uniform(0.2, 1.6, PLAN_STEPS) * (-1.0 if paid_to_use else 1.0)
    # arbitrage: export earns nearly the import price, so a plan moves all the energy it may
    export = price * rng.uniform(0.8, 1.0, PLAN_STEPS) if arbitrage else rng.uniform(0.0, 0.4, PLAN_STEPS)
    problem = DispatchProblem(grid, (NodeLimits(fleet.node, 1e9, 1e9),), forms, price, export,
                              rng.uniform(0.4, 0.8, PLAN_STEPS), np.zeros(1), 0.0, "vpp")
    model = DispatchModel(problem, Weights(carbon_price_cny_per_t=50.0, curtailment_penalty_cny_per_kwh=0.0))
    status = model.solve()[0]
    assert status.startswith("optimal"), f"the fleet's forms alone are not solvable ({status})"
    plan = model.setpoints(PLAN_STEPS).get(fleet.name)
    if plan is None:                                  # nothing controllable
        return
    for t in range(PLAN_STEPS):
        k = k0 + t
        if t:
            driver.before(k)
        fleet.step(k, plan[:, t])
        realised = np.asarray(fleet.controllable_kw(), dtype=float)
        wanted = np.minimum(plan[:, t], fleet.available_kw(k)) if fleet.curtailable else plan[:, t]
        bad = np.abs(realised - wanted) > PLAN_ATOL_KW + case.plan_rtol * np.abs(wanted)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            prices = " (arbitrage prices)" if arbitrage else " (negative prices)" if paid_to_use else ""
            prices += f" (assets {np.flatnonzero(down).tolist()} down)" if down is not None else ""
            raise AssertionError(
                f"seed {seed}{prices}, step {t} of a plan inside the offered forms: asset row {i} was planned at "
                f"{wanted[i]:.6g} kW and delivered {realised[i]:.6g} kW -- the forms promise what the "
                f"physics does not deliver")


def _check_outage(case: FleetCase) -> None:
    """A fleet type with an outage model (:meth:`~vpp.assets.base.Fleet.set_outage`):
    told that no asset is down before every step, it runs exactly as a twin never told;
    and with every other asset down, a plan inside the forms it then offers is what the
    physics delivers (the forms know what the outage takes away), at prices that
    make a plan store, sell or consume all it may."""
    told, untold = case.build(), case.build()
    drivers, rng = (EventDriver(told), EventDriver(untold)), np.random.default_rng(4)
    for k in range(RUN_STEPS // 2):
        sp = None if k % 5 == 0 else rng.choice(SETPOINTS_ANY, size=told.n_setpoints)
        for d in drivers:
            d.before(k)
        told.set_outage(np.zeros(told.n_assets, dtype=bool))
        a, b = (np.asarray(f.step(k, sp), dtype=float) for f in (told, untold))
        assert np.array_equal(a, b), (f"step {k}: set_outage with no asset down changed the output "
                                      f"({a.sum():.9g} vs {b.sum():.9g} kW)")
    down = np.arange(case.n_assets) % 2 == 0
    for seed, arbitrage, paid in ((0, False, False), (1, True, False), (2, False, True)):
        _plan_and_deliver(case, seed, arbitrage, down, paid)


def _check_trip(case: FleetCase) -> None:
    """A load under a hard node limit: at a few steps, :meth:`~vpp.assets.base.Fleet.trip`
    must cut the consumption by ``flexible_frac * flexible + fixed_frac * fixed`` of
    what :meth:`~vpp.assets.base.Fleet.draw_kw` offered (both >= 0): not less, and
    at most :data:`TRIP_OVERCUT_FRAC` of the draw more; and
    a trip that cuts nothing must leave the fleet exactly as it was (the same
    output over the following steps as a twin never tripped)."""
    fleet = case.build()
    driver, rng = EventDriver(fleet), np.random.default_rng(2)
    setpoints = [None if k % 5 == 0 else rng.choice(SETPOINTS_ANY, size=fleet.n_setpoints) for k in range(RUN_STEPS)]
    for k in range(RUN_STEPS - TRIP_FOLLOW_STEPS):
        driver.before(k)
        fleet.step(k, setpoints[k])
        if k not in TRIP_STEPS:
            continue
        used = -float(fleet.last_p_kw.sum())
        flexible, fixed = fleet.draw_kw()
        assert flexible >= 0 and fixed >= 0 and np.isfinite([flexible, fixed]).all(), \
            f"step {k}: draw_kw() gave ({flexible}, {fixed}) kW; both must be finite and >= 0"
        for f_flex, f_fixed in TRIP_FRACTIONS:
            twin = copy.deepcopy(fleet)
            p = np.asarray(twin.trip(k, f_flex, f_fixed), dtype=float)
            want = used - f_flex * flexible - f_fixed * fixed
            assert np.array_equal(p, twin.last_p_kw), f"step {k}: trip() returned other power than last_p_kw"
            left = -p.sum()
            assert want - TRIP_OVERCUT_FRAC * (flexible + fixed) - TRIP_ATOL_KW <= left <= want + TRIP_ATOL_KW, (
                f"step {k}: trip({f_flex}, {f_fixed}) left {left:.9g} kW drawn; a cut of the draw "
                f"({flexible:.9g} flexible, {fixed:.9g} fixed) from {used:.9g} kW leaves {want:.9g}")
        _check_trip_changes_nothing(fleet, k, setpoints)


def _check_trip_changes_nothing(fleet: Fleet, k: int, setpoints: list) -> None:
    """``trip(k, 0, 0)`` on a copy of *fleet* (just stepped at *k*): the copy and
    an untouched copy then step alike."""
    tripped, untouched = copy.deepcopy(fleet), copy.deepcopy(fleet)
    tripped.trip(k, 0.0, 0.0)
    events = set(fleet.event_steps().tolist())          # queued customers stay away: alike for both
    for j in range(k + 1, k + 1 + TRIP_FOLLOW_STEPS):
        outs = []
        for f in (tripped, untouched):
            if j in events:
                f.apply_events(j)
            outs.append(np.asarray(f.step(j, setpoints[j]), dtype=float))
        assert np.allclose(outs[0], outs[1], rtol=1e-12, atol=1e-9), (
            f"trip({k}, 0, 0) changed the fleet: {j - k} steps later it draws {-outs[0].sum():.9g} kW, "
            f"an untouched twin {-outs[1].sum():.9g} kW (restore the step's start state exactly)")


_FLEET_CHECKS = {
    "check_fleet_output_shape_and_sign": _check_output_shape_and_sign,
    "check_fleet_limits": _check_limits,
    "check_fleet_deterministic": _check_deterministic,
    "check_fleet_forms": _check_forms,
    "check_fleet_curtailable_caps": _check_curtailable_caps,
    "check_fleet_honest": _check_honest,
    "check_fleet_trip": _check_trip,
    "check_fleet_outage": _check_outage,
}


def fleet_checks(fleet: FleetCase | type[Fleet] | str, **case) -> list[Check]:
    """Every check that applies to *fleet* (a :class:`FleetCase`, or a class or
    registered name with :class:`FleetCase` keywords, e.g. ``params``)."""
    c = fleet if isinstance(fleet, FleetCase) else FleetCase(fleet, **case)
    names = [n for n in _FLEET_CHECKS if (n != "check_fleet_curtailable_caps" or c.cls.curtailable)
             and (n != "check_fleet_trip" or (c.cls.role == "load" and c.cls.sheddable()))
             and (n != "check_fleet_outage" or c.cls.has_outage_model())]
    return [Check(n, c.name, (lambda f=_FLEET_CHECKS[n]: f(c))) for n in names]


def check_fleet(fleet: FleetCase | type[Fleet] | str, **case) -> None:
    """Run every fleet check; raise ``AssertionError`` naming the first that fails.

    >>> check_fleet("battery", params={"p_max_kw": 500.0, "e_max_kwh": 1000.0})
    """
    for check in fleet_checks(fleet, **case):
        check()


# -- strategies ---------------------------------------------------------------

class RecordingStrategy(Strategy):
    """Runs *strategy* unchanged and keeps every window's problem and raw decision.

    The engine builds a dispatch problem for every window even when the
    strategy does not use one (:attr:`Strategy.uses_forecasts` False: it is
    still given ``None``), so its setpoints can be checked against the forms
    offered in that window.  ``calls`` holds ``(problem, decision)`` pairs,
    the decision's setpoints copied before any fleet sees them.  Bids for
    demand-response calls and day-ahead commitments are the strategy's own.
    """

    def __init__(self, strategy: Strategy):
        self.strategy = strategy
        self.name = strategy.name
        self.options = getattr(strategy, "options", None)
        self.uses_forecasts = True
        self.calls: list[tuple[DispatchProblem, Decision]] = []

    def bid_kw(self, problem: DispatchProblem, event):
        return self.strategy.bid_kw(problem, event)

    def commit_kw(self, problem: DispatchProblem, d0: int, d1: int):
        return self.strategy.commit_kw(problem, d0, d1)

    def decide(self, problem: DispatchProblem | None) -> Decision:
        decision = self.strategy.decide(problem if self.strategy.uses_forecasts else None)
        raw = copy.copy(decision)
        raw.setpoints = copy.deepcopy(getattr(decision, "setpoints", {}))
        self.calls.append((problem, raw))
        return decision


def _blocks(grid: HorizonGrid, n_cols: int) -> np.ndarray:
    """Horizon block of each setpoint column (one column per simulation step)."""
    return np.searchsorted(grid.starts, np.arange(n_cols), side="right") - 1


def check_setpoints(problem: DispatchProblem, decision: Decision) -> None:
    """Raise ``AssertionError`` unless *decision*'s raw setpoints fit the forms of *problem*.

    Per fleet: the fleet offers one controllable form in the window; the
    setpoints have one row per row of that form and between one column and
    the horizon's steps; each column ``j`` (simulation step ``k0 + j``) lies
    in the bounds of its horizon block -- storage in ``[-p_charge_max_kw,
    p_discharge_max_kw]``, thermal in ``[-p_max_kw, 0]``, a curtailable cap
    ``>= 0`` -- and is finite, except caps, which may be ``inf`` (no cap).
    A fallback decision is not checked (the engine runs the baseline instead).
    """
    if decision.fallback:
        return
    grid = problem.grid
    offered: dict[str, list] = {}
    limits = {f.fleet: f for f in problem.forms if isinstance(f, SharedLimit)}
    for f in problem.forms:
        if not isinstance(f, FixedProfile | SharedLimit):
            offered.setdefault(f.fleet, []).append(f)
    for fleet, sp in decision.setpoints.items():
        where = f"window at step {grid.k0}, fleet {fleet!r}"
        forms = offered.get(fleet, [])
        assert forms, f"{where}: setpoints for a fleet that offers no controllable form"
        assert len(forms) == 1, f"{where}: the fleet offers {len(forms)} controllable forms; setpoints address one"
        form = forms[0]
        sp = np.asarray(sp, dtype=float)
        assert sp.ndim == 2 and sp.shape[0] == form.n_assets and 1 <= sp.shape[1] <= grid.n_steps, \
            (f"{where}: setpoints of shape {sp.shape}; expected ({form.n_assets}, 1..{grid.n_steps}): one row per "
             f"row of its {type(form).__name__}, one column per simulation step")
        b = _blocks(grid, sp.shape[1])
        if isinstance(form, CurtailableSource):
            lo, hi = np.zeros(sp.shape), np.full(sp.shape, np.inf)
            finite = ~np.isnan(sp)
        elif isinstance(form, StorageLike):
            lo, hi = -form.p_charge_max_kw[:, b], form.p_discharge_max_kw[:, b]
            finite = np.isfinite(sp)
        elif isinstance(form, Thermal):
            lo, hi = -form.p_max_kw[:, b], np.zeros(sp.shape)
            finite = np.isfinite(sp)
        else:
            raise AssertionError(f"{where}: unknown form {type(form).__name__}")
        if not finite.all():
            i, j = np.argwhere(~finite)[0]
            raise AssertionError(f"{where} ({type(form).__name__}): setpoint row {i}, step {j} is {sp[i, j]}")
        tol_lo = SETPOINT_ATOL_KW + SETPOINT_RTOL * np.abs(lo)
        tol_hi = SETPOINT_ATOL_KW + SETPOINT_RTOL * np.where(np.isfinite(hi), np.abs(hi), 0.0)
        bad = (sp < lo - tol_lo) | (sp > hi + tol_hi)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise AssertionError(f"{where} ({type(form).__name__}): setpoint row {i}, step {j} is "
                                 f"{sp[i, j]:.6g} kW, outside the offered [{lo[i, j]:.6g}, {hi[i, j]:.6g}] kW")
        if fleet in limits:
            _check_shared_limit(where, limits[fleet], sp, b)


def _check_shared_limit(where: str, limit: SharedLimit, sp: np.ndarray, b: np.ndarray) -> None:
    """Each group's summed charge and discharge within its limit at every step."""
    size = np.maximum(limit.group_sum(np.ones(limit.n_assets)), 1.0)[:, None]
    for side, power, cap in (("charge", np.maximum(-sp, 0.0), limit.charge_limit_kw[:, b]),
                             ("discharge", np.maximum(sp, 0.0), limit.discharge_limit_kw[:, b])):
        total = limit.group_sum(power)                                    # (G, steps)
        over = total > cap + SETPOINT_ATOL_KW * size + SETPOINT_RTOL * np.where(np.isfinite(cap), cap, 0.0)
        if over.any():
            k, j = np.argwhere(over)[0]
            raise AssertionError(f"{where}: group {k}'s summed {side} at step {j} is {total[k, j]:.6g} kW, "
                                 f"beyond its shared limit {cap[k, j]:.6g} kW")


def check_balance(results: Results) -> None:
    """Raise ``AssertionError`` unless the energy balance closes at every node and step.

    Recomputed from the recorded sides: each fleet's own output (``fleets``)
    summed by node, plus the grid import, minus the export (``nodes``) must be
    zero; import and export are >= 0 and never both positive; the recorded
    curtailment equals what the node's curtailable fleets had available and
    did not deliver, and each delivers between zero and its available power;
    limit violations are the exchange beyond the node's limits.
    """
    info, p = results.fleet_info, results.power()
    for node in results.node_info.index:
        at = list(info.index[info["node"] == node])
        imp = results.nodes[(node, "grid_import_kw")].to_numpy(dtype=float)
        exp = results.nodes[(node, "grid_export_kw")].to_numpy(dtype=float)
        fleets_kw = p[at].to_numpy(dtype=float)
        scale = max(1.0, float(np.abs(fleets_kw).max(initial=0.0)))
        residual = fleets_kw.sum(axis=1) + imp - exp
        k = int(np.argmax(np.abs(residual))) if len(residual) else 0
        assert not len(residual) or abs(residual[k]) <= BALANCE_TOL * scale, (
            f"energy balance: node {node!r} at {results.index[k]}: fleets {fleets_kw[k].sum():.9g} kW + import "
            f"{imp[k]:.9g} kW - export {exp[k]:.9g} kW = {residual[k]:.3g} kW, not 0")
        assert (imp >= 0).all() and (exp >= 0).all(), f"energy balance: node {node!r}: negative import or export"
        assert ((imp == 0) | (exp == 0)).all(), f"energy balance: node {node!r} imports and exports at once"
        withheld = np.zeros(len(p))
        for fleet in at:
            if not bool(info.loc[fleet, "curtailable"]):
                continue
            avail = results.fleets[(fleet, "p_available_kw")].to_numpy(dtype=float)
            out = p[fleet].to_numpy(dtype=float)
            assert (out >= -1e-9).all() and (out <= avail + 1e-6 * np.maximum(avail, 1.0)).all(), \
                f"energy balance: curtailable fleet {fleet!r} outside [0, available]"
            withheld += avail - out
        curtailed = results.nodes[(node, "curtailed_kw")].to_numpy(dtype=float)
        bad = np.abs(curtailed - withheld) > BALANCE_TOL * scale
        assert not bad.any(), (f"energy balance: node {node!r} at {results.index[np.argmax(bad)]}: recorded "
                               f"curtailment {curtailed[np.argmax(bad)]:.9g} kW, but its sources withheld "
                               f"{withheld[np.argmax(bad)]:.9g} kW")
        for q, x in (("import", imp), ("export", exp)):
            lim = float(results.node_info.loc[node, f"{q}_limit_kw"])
            got = results.nodes[(node, f"{q}_violation_kw")].to_numpy(dtype=float)
            want = np.maximum(x - lim, 0.0)
            tol = LIMIT_TOL * max(lim, 1.0) if np.isfinite(lim) else 0.0
            assert (np.abs(got - want) <= tol).all(), \
                f"energy balance: node {node!r}: recorded {q} violation differs from the {q} beyond {lim:g} kW"


# The strategy suite's demand-response call: peak shaving in the second afternoon,
# announced 12 h ahead, settled on the pre-event load (no history run needed).
SUITE_CALL = {"name": "suite_call", "kind": "peak_shaving", "start": "2024-07-23T16:00:00",
              "end": "2024-07-23T18:00:00", "notice_h": 12.0, "capacity_kw": 1_000.0, "baseline": "pre_event"}


def default_strategy_scenario() -> Scenario:
    """The scenario the strategy suite runs on: the small district (two days,
    two nodes, PV, wind, offices, home chargers, batteries) shipped with vpp,
    with one demand-response call (:data:`SUITE_CALL`), so every check also
    holds while a strategy answers a call.  One check runs it in a
    two-settlement market."""
    path = Path(str(resources.files("vpp.scenarios") / "small_district.toml"))
    data = read_scenario_dict(path)
    data["dr"] = {"history": "run", "events": [SUITE_CALL]}
    return scenario_from_dict(data, str(path), path.parent)


def _strategy_instance(strategy: Strategy | type[Strategy] | str) -> Strategy:
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise KeyError(f"no strategy registered as {strategy!r} (known: {', '.join(sorted(STRATEGIES))})")
        return STRATEGIES[strategy]()
    return strategy() if isinstance(strategy, type) else strategy


@contextmanager
def _registered(cls: type[Strategy]):
    """*cls* registered under its name for the block (as it is once a researcher registers it)."""
    known = STRATEGIES.get(cls.name)
    assert known in (None, cls), f"another strategy ({known.__qualname__}) is registered as {cls.name!r}"
    STRATEGIES[cls.name] = cls
    try:
        yield
    finally:
        if known is None:
            del STRATEGIES[cls.name]


class _Runs:
    """The strategy's runs on one scenario, made once and shared by its checks."""

    def __init__(self, strategy: Strategy, scenario: Scenario | str | Path | None):
        self.strategy, self.scenario = strategy, scenario
        self._runs: dict[int, tuple[Results | None, list, BaseException | None]] = {}

    def get(self, i: int = 0, market: bool = False) -> tuple[Results | None, list, BaseException | None]:
        """Run *i* (a fresh copy of the strategy), in the scenario's own mode or
        in a two-settlement market: results or the error, and the recorded windows."""
        key = (i, market)
        if key not in self._runs:
            scenario = vpp.api.load(self.scenario if self.scenario is not None else default_strategy_scenario())
            if market:
                scenario = scenario.model_copy(update={"market": MarketConfig(mode="two_settlement")})
            rec = RecordingStrategy(copy.deepcopy(self.strategy))
            try:
                self._runs[key] = (vpp.api.run(scenario, strategy=rec), rec.calls, None)
            except Exception as e:  # reported by the checks that need the run
                self._runs[key] = (None, rec.calls, e)
        return self._runs[key]

    def results(self, i: int = 0, market: bool = False) -> Results:
        res, _, err = self.get(i, market)
        if err is not None:
            raise AssertionError(f"the run raised {type(err).__name__}: {err}") from err
        return res


def _check_balance_and_limits(runs: _Runs) -> None:
    res = runs.results()
    check_balance(res)
    assert np.isfinite(res.fleets.to_numpy(dtype=float)).all(), "a recorded fleet quantity is NaN or infinite"
    for fleet, q in res.fleets.columns:
        if q == "soc_frac":
            soc = res.fleets[(fleet, q)]
            assert ((soc >= -SOC_TOL) & (soc <= 1 + SOC_TOL)).all(), f"fleet {fleet!r}: soc_frac outside [0, 1]"
    sessions = res.tables.get("ev_sessions")
    if sessions is not None:
        over = sessions["delivered_kwh"] > sessions["requested_kwh"] + 1e-6
        assert not over.any(), f"{int(over.sum())} EV sessions were delivered more energy than requested"
    _assert_no_fallback(res)


def _assert_no_fallback(res: Results, where: str = "") -> None:
    fell = res.dispatch["status"][res.dispatch["fallback"].astype(bool)]
    assert fell.empty, f"{where}{len(fell)} windows fell back to the baseline (first: {fell.iloc[0]})"


def _check_setpoints_within_forms(runs: _Runs) -> None:
    _, calls, err = runs.get()
    assert calls, "the strategy was never asked to decide"
    for problem, decision in calls:
        check_setpoints(problem, decision)
    if err is not None:
        raise AssertionError(f"the run raised {type(err).__name__}: {err}") from err


def _check_deterministic_strategy(runs: _Runs) -> None:
    (_, calls, _), (_, calls_again, _) = runs.get(0), runs.get(1)
    assert len(calls) == len(calls_again), f"{len(calls)} windows in one run, {len(calls_again)} in the next"
    for (problem, d1), (_, d2) in zip(calls, calls_again, strict=True):
        assert sorted(d1.setpoints) == sorted(d2.setpoints), (f"window at step {problem.grid.k0}: setpoints for "
                                                              f"{sorted(d1.setpoints)}, then {sorted(d2.setpoints)}")
        for fleet, sp in d1.setpoints.items():
            assert np.array_equal(np.asarray(sp, float), np.asarray(d2.setpoints[fleet], float), equal_nan=True), (
                f"window at step {problem.grid.k0}, fleet {fleet!r}: two runs with the same seed returned different "
                f"setpoints; draw randomness from a seeded generator")
    pd.testing.assert_frame_equal(runs.results(0).fleets, runs.results(1).fleets, obj="fleets of two runs")


def _check_in_market(runs: _Runs) -> None:
    """In a two-settlement market: balance, setpoints within the forms, no
    fallback, and every step of the run committed at its gate closure."""
    res = runs.results(market=True)
    check_balance(res)
    _, calls, _ = runs.get(market=True)
    for problem, decision in calls:
        check_setpoints(problem, decision)
    _assert_no_fallback(res, "in the market, ")
    position = res.tables["market"]["position_kw"].to_numpy(dtype=float)
    assert np.isfinite(position).all(), f"{int((~np.isfinite(position)).sum())} steps have no day-ahead position"


def _check_option_error(runs: _Runs) -> None:
    strategy = runs.strategy
    scenario = vpp.api.load(runs.scenario if runs.scenario is not None else default_strategy_scenario())
    bad = scenario.model_copy(update={"strategy": StrategyConfig(name=strategy.name, options={"no_such_option": 1})})
    with _registered(type(strategy)):
        try:
            vpp.api.validate(bad)
        except ScenarioError as e:
            msg = str(e)
        else:
            raise AssertionError("an unknown option 'no_such_option' was accepted; derive Options from "
                                 "vpp.optimizer.StrategyOptions (no unknown keys)")
    assert "strategy.options.no_such_option" in msg, f"the error does not name strategy.options.no_such_option: {msg}"
    assert "\n" not in msg, f"the error is not one line: {msg!r}"


_STRATEGY_CHECKS = {
    "check_strategy_balance_and_limits": _check_balance_and_limits,
    "check_strategy_setpoints_within_forms": _check_setpoints_within_forms,
    "check_strategy_deterministic": _check_deterministic_strategy,
    "check_strategy_option_error": _check_option_error,
    "check_strategy_in_market": _check_in_market,
}


def strategy_checks(strategy: Strategy | type[Strategy] | str,
                    scenario: Scenario | str | Path | None = None) -> list[Check]:
    """Every strategy check, sharing one set of runs on *scenario* (default:
    :func:`default_strategy_scenario`).  Each run uses a fresh copy of *strategy*."""
    s = _strategy_instance(strategy)
    runs = _Runs(s, scenario)
    return [Check(n, s.name, (lambda f=f: f(runs))) for n, f in _STRATEGY_CHECKS.items()]


def check_strategy(strategy: Strategy | type[Strategy] | str, scenario: Scenario | str | Path | None = None) -> None:
    """Run every strategy check; raise ``AssertionError`` naming the first that fails.

    >>> check_strategy("rule_based")
    """
    for check in strategy_checks(strategy, scenario):
        check()
