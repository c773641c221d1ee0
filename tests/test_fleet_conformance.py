"""One contract every registered fleet passes (after scikit-learn's check_estimator):
the suite of vpp.testing -- output shape and sign by role for any setpoint, limits
honoured, deterministic under a seed, well-formed flexibility forms, curtailment caps
exact, and honest forms (a plan inside them is delivered by the physics)."""

import numpy as np
import pytest
from _exo_helpers import clear_sky_exogenous, make_context
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vpp.assets import FLEET_TYPES
from vpp.testing import FleetCase, parametrize_with_checks

# Every registered type with its defaults, plus variants that change what a fleet offers
# ("type:variant"; a data centre offering batch work and UPS has two setpoint rows per site).
PARAMS = {"battery": {"p_max_kw": 500.0, "e_max_kwh": 1000.0},
          "datacentre:both": {"flexible_part": "both", "ups_kwh": 2_000.0, "ups_kw": 1_000.0}}
CASES = sorted(FLEET_TYPES) + ["datacentre:both"]
N_ASSETS = 6
# Per-case relative tolerance of the honesty check, should a model need one.  A 2 MWh UPS
# planned to end full: the interior-point plan lands within ~1e-6 of e_max, which the
# physics clips (0.01 kW).
PLAN_RTOL: dict[str, float] = {"datacentre:both": 1e-4}
EXO = clear_sky_exogenous(days=2)   # the stored pvlib clear-sky day, twice: the second is horizon padding


def case(name: str) -> FleetCase:
    return FleetCase(name.partition(":")[0], PARAMS.get(name, {}), label=name, n_assets=N_ASSETS,
                     exogenous=EXO, plan_rtol=PLAN_RTOL.get(name, 1e-6))


@parametrize_with_checks([case(name) for name in CASES])
def test_fleet_conforms(check):
    check()


def build(type_name, seed=0):
    cls = FLEET_TYPES[type_name]
    ctx = make_context(EXO, N_ASSETS, seed=seed, name=type_name, pad_steps=96)
    return cls(ctx, cls.Params.model_validate(PARAMS.get(type_name, {})))


CURTAILABLE = sorted(name for name, cls in FLEET_TYPES.items() if cls.curtailable)


@pytest.mark.parametrize("type_name", CURTAILABLE)
@settings(max_examples=60, deadline=None)
@given(k=st.integers(0, 95), setpoint=arrays(np.float64, N_ASSETS, elements=st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e300, -1e300]))))
def test_curtailable_sources_are_capped_exactly(type_name, k, setpoint):
    """Output = min(available, max(setpoint, 0)); NaN means no cap (Hypothesis searches
    beyond the suite's seeded draws, at any step in any order)."""
    fleet = build(type_name)
    available = fleet.available_kw(k)
    p = fleet.step(k, setpoint)
    cap = np.where(np.isnan(setpoint), np.inf, np.maximum(setpoint, 0.0))
    np.testing.assert_array_equal(p, np.minimum(available, cap))
    assert fleet.state()["p_available_kw"] == pytest.approx(available.sum())
