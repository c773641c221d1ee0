"""One contract every registered strategy passes: energy balance at every node and
step, asset limits, determinism under a seed, and a one-line error for a
misconfigured option."""

import numpy as np
import pandas as pd
import pytest
from conftest import check_balance, scenario

import vpp
from vpp.errors import ScenarioError
from vpp.optimizer import STRATEGIES

NAMES = sorted(STRATEGIES)          # the built-in strategies, registered on import


@pytest.fixture(scope="module")
def runs():
    return {}


def run(name, runs):
    if name not in runs:
        runs[name] = vpp.run(scenario({"strategy": {"name": name}}))
    return runs[name]


@pytest.mark.parametrize("name", NAMES)
def test_energy_balance_and_limits(name, runs):
    res = run(name, runs)
    check_balance(res)
    assert np.isfinite(res.fleets.to_numpy(dtype=float)).all()
    info = res.fleet_info
    for fleet in info.index[info["type"] == "battery"]:
        soc = res.fleets[(fleet, "soc_frac")]
        assert (soc >= -1e-9).all() and (soc <= 1 + 1e-9).all()
    sessions = res.tables["ev_sessions"]
    assert (sessions["delivered_kwh"] <= sessions["requested_kwh"] + 1e-6).all()
    assert res.kpis.loc["n_fallbacks", "value"] == 0


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_a_seed(name, runs):
    first = run(name, runs)
    again = vpp.run(scenario({"strategy": {"name": name}}))
    pd.testing.assert_frame_equal(first.fleets, again.fleets)


@pytest.mark.parametrize("name", NAMES)
def test_a_misconfigured_option_is_one_clear_error(name):
    with pytest.raises(ScenarioError) as err:
        vpp.run(scenario({"strategy": {"name": name, "options": {"no_such_option": 1}}}))
    assert "strategy.options.no_such_option" in str(err.value)
    assert "\n" not in str(err.value)
