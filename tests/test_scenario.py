"""Scenario files: inheritance, parameter distributions, the resolved scenario."""

import numpy as np
import pytest
from conftest import SMALL
from hypothesis import given, settings
from hypothesis import strategies as st

import vpp
from vpp.errors import ScenarioError
from vpp.params import LogNormal, Normal, Uniform, sample
from vpp.scenario import load_scenario


def test_extends_merges_tables_and_named_entries(tmp_path):
    child = tmp_path / "child.toml"
    child.write_text(f'''
extends = "{SMALL.as_posix()}"
name = "child"
seed = 99
[[nodes]]
name = "city"
export_limit_kw = 0
[[fleets]]
name = "battery"
count = 5
[[fleets]]
name = "more_pv"
type = "pv"
node = "coast"
count = 3
''')
    sc = load_scenario(child)
    assert sc.name == "child" and sc.seed == 99
    city = next(n for n in sc.nodes if n.name == "city")
    assert city.export_limit_kw == 0 and city.import_limit_kw == 20_000    # kept from the base
    bat = next(f for f in sc.fleets if f.name == "battery")
    assert bat.count == 5 and bat.params["e_max_kwh"] == 2_000                # merged, not replaced
    assert [f.name for f in sc.fleets][-1] == "more_pv"
    assert sc.time.step_min == 15


@pytest.mark.parametrize("link", ['extends = "{}.toml"\n',                              # a parent
                                  'name = "x"\n[[districts]]\nname = "d"\nscenario = "{}.toml"\n'])   # a district
def test_circular_inheritance_is_an_error(tmp_path, link):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(link.format("b"))
    b.write_text(link.format("a"))
    with pytest.raises(ScenarioError, match="circular"):
        load_scenario(a)


@settings(max_examples=40, deadline=None)
@given(st.floats(1, 1000), st.floats(0.01, 500), st.integers(0, 2**31))
def test_lognormal_parameter_draws_have_the_stated_mean_and_respect_bounds(mean, std, seed):
    spec = LogNormal(dist="lognormal", mean=mean, std=std, low=0.5 * mean, high=3 * mean)
    x = sample(spec, np.random.default_rng(seed), 2000)
    assert x.min() >= 0.5 * mean and x.max() <= 3 * mean


def test_untruncated_lognormal_mean_and_std():
    x = sample(LogNormal(dist="lognormal", mean=500, std=250), np.random.default_rng(1), 200_000)
    assert x.mean() == pytest.approx(500, rel=0.01) and x.std() == pytest.approx(250, rel=0.02)


def test_uniform_and_truncated_normal():
    rng = np.random.default_rng(2)
    u = sample(Uniform(dist="uniform", low=5, high=25), rng, 100_000)
    assert u.min() >= 5 and u.max() <= 25 and u.mean() == pytest.approx(15, rel=0.01)
    n = sample(Normal(dist="normal", mean=180, std=20, low=90, high=270), rng, 100_000)
    assert n.min() >= 90 and n.max() <= 270 and n.mean() == pytest.approx(180, abs=0.5)


def test_resolved_scenario_round_trips(tmp_path):
    res = vpp.run(SMALL, strategy="source_follows_load")
    path = tmp_path / "scenario.toml"
    path.write_text(res.scenario_toml)
    again = vpp.run(path, strategy="source_follows_load")
    import pandas as pd

    pd.testing.assert_frame_equal(res.fleets, again.fleets)
