"""Perfect forecasts are perfect for every forecast quantity, per registered fleet type.

With ``[forecast] perfect = true`` the window a fleet is shown is the actuals
(``Exogenous.perfect``), so what it offers for the window must be what its
physics then realises -- its own stochastic quantities included (industrial
base-load noise, data-centre IT noise, building base load, turbine outages):

* a FixedProfile equals the realised uncontrollable power (the fleet's power
  minus the part its setpoints address);
* a CurtailableSource's bound equals the power available;
* a Thermal form's states follow from the realised electric power;
* under the planned setpoints, the controllable part is the plan.

Every registered type is covered through the registry, under its baseline and
under a plan optimised against random prices, plus variants that switch on a
stochastic part a default leaves off (turbine outages) or change what is
offered (a data centre's UPS).
"""

from __future__ import annotations

import numpy as np
import pytest
from _exo_helpers import clear_sky_exogenous, make_context

from vpp.assets import FLEET_TYPES
from vpp.dispatch import DispatchProblem, NodeLimits
from vpp.exogenous.config import ForecastConfig
from vpp.exogenous.forecast import Forecaster
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, Thermal
from vpp.optimizer.model import DispatchModel, Weights
from vpp.testing import EventDriver

N_ASSETS = 6
K0 = 30  # the window starts after some steps, so states are not the initial ones
STEPS = 16
PROFILE_KW = 1e-6  # forecast against realised power: the same arithmetic, other order [kW]
TEMP_C = 1e-9  # a state recursion against the physics' own [degC]
PLAN_KW = 1e-3  # interior-point plans sit within ~1e-6 of their bounds [kW]

VARIANTS = {
    "battery": {"p_max_kw": 500.0, "e_max_kwh": 1000.0},
    "wind:outages": {"availability_frac": 0.8, "outage_mttr_h": 2.0},
    "datacentre:ups": {"flexible_part": "ups", "ups_kwh": 2_000.0, "ups_kw": 1_000.0},
    "datacentre:both": {"flexible_part": "both", "ups_kwh": 2_000.0, "ups_kw": 1_000.0},
}
CASES = sorted(FLEET_TYPES) + sorted(name for name in VARIANTS if ":" in name)
# Interior-point plans end a store (a UPS planned to end full, a batch planned to finish)
# within ~1e-6 of its size; the physics clips the excess (~0.01 kW).
PLAN_RTOL = {"datacentre:both": 1e-4, "datacentre:ups": 1e-4, "industry": 1e-4}


def _build(case: str, seed: int):
    type_name = case.partition(":")[0]
    cls = FLEET_TYPES[type_name]
    ctx = make_context(clear_sky_exogenous(days=2), N_ASSETS, seed=seed, name=type_name, pad_steps=96)
    return cls(ctx, cls.Params.model_validate(VARIANTS.get(case, {})))


def _perfect(fleet, k: int, n: int):
    return Forecaster(ForecastConfig(perfect=True), seed=7).forecast(fleet.exo, k, n)


def _plan(fleet, grid, forms, seed: int):
    rng = np.random.default_rng(seed)
    problem = DispatchProblem(grid, (NodeLimits(fleet.node, 1e9, 1e9),), tuple(forms),
                              rng.uniform(0.2, 1.6, STEPS), rng.uniform(0.0, 0.4, STEPS),
                              rng.uniform(0.4, 0.8, STEPS), np.zeros(1), 0.0, "vpp")
    model = DispatchModel(problem, Weights(carbon_price_cny_per_t=50.0, curtailment_penalty_cny_per_kwh=0.0))
    assert model.solve()[0].startswith("optimal")
    return model.setpoints(STEPS).get(fleet.name)


def test_the_perfect_window_is_marked_and_the_others_are_not():
    exo = clear_sky_exogenous(days=2)
    assert Forecaster(ForecastConfig(perfect=True), seed=1).forecast(exo, 10, 8).perfect
    assert not Forecaster(ForecastConfig(), seed=1).forecast(exo, 10, 8).perfect
    assert not exo.window(10, 8).perfect


@pytest.mark.parametrize("under", ["baseline", "plan"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES)
def test_what_a_fleet_offers_is_what_it_realises(case, seed, under):
    fleet = _build(case, seed)
    driver = EventDriver(fleet)
    driver.run_uncontrolled_to(K0)
    grid = HorizonGrid(K0, np.ones(STEPS, dtype=int), fleet.dt_h)
    forms = fleet.flexibility(grid, _perfect(fleet, K0, STEPS))
    plan = _plan(fleet, grid, forms, seed) if under == "plan" else None
    fixed_kw = sum((f.p_kw for f in forms if isinstance(f, FixedProfile)), np.zeros(STEPS))
    sources = [f for f in forms if isinstance(f, CurtailableSource)]
    thermal = [f for f in forms if isinstance(f, Thermal)]
    x = [f.temp_init_c for f in thermal]
    for t in range(STEPS):
        k = K0 + t
        if t:
            driver.before(k)
        p = fleet.step(k, None if plan is None else plan[:, t])
        controllable = fleet.controllable_kw()
        assert p.sum() - controllable.sum() == pytest.approx(fixed_kw[t], abs=PROFILE_KW, rel=1e-9), (
            f"{case}: step {t}: the fixed profile is the realised uncontrollable power")
        for f in sources:
            np.testing.assert_allclose(f.p_max_kw[:, t], fleet.available_kw(k), rtol=1e-12, atol=PROFILE_KW,
                                       err_msg=f"{case}: step {t}: the source's bound is the available power")
        if plan is not None:
            wanted = np.minimum(plan[:, t], fleet.available_kw(k)) if fleet.curtailable else plan[:, t]
            np.testing.assert_allclose(controllable, wanted, rtol=PLAN_RTOL.get(case, 1e-6), atol=PLAN_KW,
                                       err_msg=f"{case}: step {t} of the plan")
        if thermal:
            now = fleet.flexibility(HorizonGrid(k + 1, np.ones(1, dtype=int), fleet.dt_h), _perfect(fleet, k + 1, 1))
            now_thermal = [f for f in now if isinstance(f, Thermal)]
            for i, f in enumerate(thermal):
                # electric power drawn (>= 0) is minus the controllable part's generator-sign power
                x[i] = (np.einsum("nij,nj->ni", f.a[:, t], x[i]) + f.b_k_per_kw[:, t] * -controllable[:, None]
                        + f.d_k[:, t])
                np.testing.assert_allclose(x[i], now_thermal[i].temp_init_c, rtol=0, atol=TEMP_C,
                                           err_msg=f"{case}: step {t}: the thermal states")


@pytest.mark.parametrize("case", CASES)
def test_looking_ahead_does_not_change_the_run(case):
    """A perfect forecast reads the values still to be drawn; the run is the same
    with or without it (bit for bit), so perfect and imperfect runs share their actuals."""
    looked, plain = _build(case, 3), _build(case, 3)
    out = {id(looked): [], id(plain): []}
    for fleet in (looked, plain):
        driver = EventDriver(fleet)
        for k in range(40):
            driver.before(k)
            if fleet is looked and k % 4 == 0:
                fleet.flexibility(HorizonGrid(k, np.ones(96, dtype=int), fleet.dt_h), _perfect(fleet, k, 96))
            out[id(fleet)].append(fleet.step(k, None))
    np.testing.assert_array_equal(np.array(out[id(looked)]), np.array(out[id(plain)]))
