"""One contract every registered fleet passes (after scikit-learn's check_estimator):
output shape and sign by role, finite for any setpoint, deterministic under a seed,
and flexibility forms of the right shape."""

import numpy as np
import pytest
import simpy
from _exo_helpers import clear_sky_exogenous, make_context
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vpp.assets import FLEET_TYPES
from vpp.dispatch import DispatchProblem, NodeLimits
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, StorageLike, Thermal
from vpp.optimizer.model import DispatchModel, Weights
from vpp.queueing import start_queue

# Every registered type with its defaults, plus variants that change what a fleet offers
# ("type:variant"; a data centre offering batch work and UPS has two setpoint rows per site).
PARAMS = {"battery": {"p_max_kw": 500.0, "e_max_kwh": 1000.0},
          "datacentre:both": {"flexible_part": "both", "ups_kwh": 2_000.0, "ups_kw": 1_000.0}}
CASES = sorted(FLEET_TYPES) + ["datacentre:both"]
SETPOINTS = (0.0, 1e9, -1e9, np.inf, -np.inf, np.nan, 123.0, -456.0)
N_ASSETS = 6


def build(case, seed=0, days=2):
    type_name = case.partition(":")[0]
    cls = FLEET_TYPES[type_name]
    exo = clear_sky_exogenous(days=days)
    ctx = make_context(exo, N_ASSETS, seed=seed, name=type_name, pad_steps=96)
    return cls(ctx, cls.Params.model_validate(PARAMS.get(case, {})))


class Driver:
    """Applies a fleet's discrete events the way the engine does: batched events
    and, for fleets with queueing customers, the SimPy queue of vpp.queueing."""

    def __init__(self, fleet):
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


def run(fleet, steps=96, rng_seed=1):
    rng = np.random.default_rng(rng_seed)
    driver = Driver(fleet)
    out = []
    for k in range(steps):
        driver.before(k)
        sp = None if k % 5 == 0 else rng.choice(SETPOINTS, size=fleet.n_setpoints)
        out.append(fleet.step(k, sp))
    return np.array(out)


@pytest.mark.parametrize("type_name", CASES)
def test_step_shape_sign_and_finiteness(type_name):
    fleet = build(type_name)
    p = run(fleet)
    assert p.shape == (96, N_ASSETS) and np.isfinite(p).all()
    if fleet.role == "source":
        assert (p >= -1e-9).all()
    if fleet.role == "load":
        assert (p <= 1e-9).all()
    state = fleet.state()
    assert set(state) == set(fleet.state_columns) and all(np.isfinite(v) for v in state.values())


@pytest.mark.parametrize("type_name", CASES)
def test_deterministic_under_a_seed(type_name):
    np.testing.assert_array_equal(run(build(type_name, seed=3)), run(build(type_name, seed=3)))


@pytest.mark.parametrize("type_name", CASES)
def test_flexibility_forms_are_well_formed(type_name):
    fleet = build(type_name)
    grid = HorizonGrid.build(8, 0.25, 4, 96, 4)
    forecast = fleet.exo.window(grid.k0, grid.n_steps)
    for k in range(8):
        fleet.step(k, None)
    forms = fleet.flexibility(grid, forecast)
    assert forms, "a fleet offers at least one form"
    for f in forms:
        assert f.fleet == fleet.name and f.node == fleet.node
        if isinstance(f, FixedProfile):
            assert f.p_kw.shape == (grid.n_blocks,)
            continue
        assert f.n_assets == fleet.n_setpoints
        if isinstance(f, CurtailableSource):
            assert f.p_max_kw.shape == (fleet.n_assets, grid.n_blocks) and (f.p_max_kw >= 0).all()
        if isinstance(f, StorageLike):
            assert (f.p_charge_max_kw >= 0).all() and (f.p_discharge_max_kw >= 0).all()
            assert (f.e_min_kwh <= f.e_max_kwh + 1e-9).all()
        if isinstance(f, Thermal):
            assert (f.p_max_kw >= 0).all() and (f.temp_min_c <= f.temp_max_c).all()


CURTAILABLE = sorted(name for name, cls in FLEET_TYPES.items() if cls.curtailable)


@pytest.mark.parametrize("type_name", CURTAILABLE)
@settings(max_examples=60, deadline=None)
@given(k=st.integers(0, 95), setpoint=arrays(np.float64, N_ASSETS, elements=st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e300, -1e300]))))
def test_curtailable_sources_are_capped_exactly(type_name, k, setpoint):
    """Output = min(available, max(setpoint, 0)); NaN means no cap."""
    fleet = build(type_name)
    available = fleet.available_kw(k)
    p = fleet.step(k, setpoint)
    cap = np.where(np.isnan(setpoint), np.inf, np.maximum(setpoint, 0.0))
    np.testing.assert_array_equal(p, np.minimum(available, cap))
    assert fleet.state()["p_available_kw"] == pytest.approx(available.sum())


# Honesty: what a fleet offers the optimizer must be what its physics delivers.
PLAN_STEPS = 16
PLAN_ATOL_KW = 1e-3          # interior-point plans sit within ~1e-6 of their bounds
# Per-case relative tolerance, should a model need one.  A 2 MWh UPS planned to end full:
# the interior-point plan lands within ~1e-6 of e_max, which the physics clips (0.01 kW).
PLAN_RTOL: dict[str, float] = {"datacentre:both": 1e-4}


@pytest.mark.parametrize("type_name", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_a_plan_inside_the_offered_forms_is_delivered_by_the_physics(type_name, seed):
    """Optimise the fleet alone against random prices with a perfect forecast, then
    send the plan to the physics step by step: it must come out as planned."""
    fleet = build(type_name, seed=seed)
    k0 = 30                                          # after some steps, so states are not the initial ones
    driver = Driver(fleet)
    for k in range(k0):
        driver.before(k)
        fleet.step(k, None)
    driver.before(k0)
    grid = HorizonGrid(k0, np.ones(PLAN_STEPS, dtype=int), fleet.dt_h)
    forms = tuple(fleet.flexibility(grid, fleet.exo.window(k0, PLAN_STEPS)))
    rng = np.random.default_rng(seed)
    problem = DispatchProblem(grid, (NodeLimits(fleet.node, 1e9, 1e9),), forms, rng.uniform(0.2, 1.6, PLAN_STEPS),
                              rng.uniform(0.0, 0.4, PLAN_STEPS), rng.uniform(0.4, 0.8, PLAN_STEPS), np.zeros(1),
                              0.0, "vpp")
    model = DispatchModel(problem, Weights(carbon_price_cny_per_t=50.0, curtailment_penalty_cny_per_kwh=0.0))
    assert model.solve()[0].startswith("optimal")
    plan = model.setpoints(PLAN_STEPS).get(fleet.name)
    if plan is None:                                  # nothing controllable
        return
    rtol = PLAN_RTOL.get(type_name, 1e-6)
    for t in range(PLAN_STEPS):
        k = k0 + t
        if t:
            driver.before(k)
        fleet.step(k, plan[:, t])
        realised = fleet.controllable_kw()
        wanted = np.minimum(plan[:, t], fleet.available_kw(k)) if fleet.curtailable else plan[:, t]
        np.testing.assert_allclose(realised, wanted, rtol=rtol, atol=PLAN_ATOL_KW,
                                   err_msg=f"{type_name}: step {t} of the plan")

