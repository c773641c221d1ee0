"""No bad value reaches the physics: every input model refuses NaN, infinity,
booleans for numbers, contradictory pairs and implausible values, with one line
naming the file, the field and the reason."""

import math

import pytest
import tomli_w
from conftest import SMALL, scenario

import vpp
from vpp.cli import main
from vpp.errors import ScenarioError

NAN, INF = math.nan, math.inf


def fleet(name: str, **params) -> dict:
    """An override of one fleet's parameters in the small district."""
    return {"fleets": [{"name": name, "params": params}]}


def new_fleet(type_: str, **params) -> dict:
    """An override adding a sixth fleet (``fleets[5]``) of *type_* to the small district."""
    return {"fleets": [{"name": "extra", "type": type_, "node": "city", "count": 1, "params": params}]}


# (override of the small district, field path, words of the reason)
BAD_INPUTS = [
    # NaN and infinity
    (fleet("offices", temp_init_c=NAN), "fleets[2].params.temp_init_c", "must be a finite number, got nan"),
    (fleet("offices", cooling_setpoint_c=NAN), "fleets[2].params.cooling_setpoint_c", "finite number"),
    (fleet("battery", p_max_kw=INF), "fleets[4].params.p_max_kw", "must be a finite number, got inf"),
    (fleet("battery", e_max_kwh={"dist": "uniform", "low": 1_000, "high": INF}),
     "fleets[4].params.e_max_kwh.high", "finite number"),
    (fleet("pv", p_dc_kwp={"dist": "normal", "mean": NAN, "std": 10, "low": 100}),
     "fleets[0].params.p_dc_kwp.mean", "finite number"),
    (fleet("pv", p_dc_kwp={"dist": "lognormal", "mean": 500, "std": 100, "high": NAN}),
     "fleets[0].params.p_dc_kwp.high", "must be a number, not NaN"),
    ({"nodes": [{"name": "city", "import_limit_kw": NAN}]}, "nodes[0].import_limit_kw", "not NaN"),
    ({"grid": {"ramp_limit_kw_per_h": NAN}}, "grid.ramp_limit_kw_per_h", "not NaN"),
    ({"strategy": {"options": {"carbon_price_cny_per_t": INF}}}, "strategy.options.carbon_price_cny_per_t",
     "finite number"),
    ({"forecast": {"temp_error_k_24h": NAN}}, "forecast.temp_error_k_24h", "finite number"),
    # booleans where numbers are meant
    (fleet("battery", p_max_kw=True), "fleets[4].params.p_max_kw", "must be a number, not a boolean (got true)"),
    (fleet("offices", cooling_months=[6, True]), "fleets[2].params.cooling_months", "not a boolean"),
    (fleet("pv", p_dc_kwp={"dist": "uniform", "low": False, "high": 500}), "fleets[0].params.p_dc_kwp.low",
     "not a boolean"),
    ({"nodes": [{"name": "city", "export_limit_kw": False}]}, "nodes[0].export_limit_kw", "not a boolean"),
    ({"tariff": {"flat_price_cny_per_kwh": True}}, "tariff.flat_price_cny_per_kwh", "not a boolean"),
    # contradictory pairs
    (fleet("battery", soc_min=0.9, soc_max=0.2), "fleets[4].params.soc_max", "window is reversed"),
    (fleet("battery", soc_init=0.95), "fleets[4].params.soc_init", "outside the state-of-charge window"),
    (fleet("offices", heating_setpoint_c=27.0), "fleets[2].params.heating_setpoint_c",
     "above the cooling setpoint"),
    (fleet("offices", setback_min_c=30.0, setback_max_c=15.0), "fleets[2].params.setback_max_c",
     "setback band is reversed"),
    (fleet("offices", setback_max_c=25.0), "fleets[2].params.setback_max_c", "below the cooling setpoint"),
    (fleet("offices", setback_min_c=21.0), "fleets[2].params.setback_min_c", "above the heating setpoint"),
    (new_fleet("datacentre", ups_kwh=100.0, ups_kw=50.0, ups_reserve_frac=0.9, ups_soc_max=0.8),
     "fleets[5].params.ups_reserve_frac", "the UPS window is reversed"),
    (new_fleet("datacentre", chw_supply_c=20.0, chw_return_c=18.0), "fleets[5].params.chw_return_c",
     "must exceed chw_supply_c"),
    (fleet("offices", heating_months=[12, 1, 7]), "fleets[2].params.heating_months", "also a cooling month"),
    # months and physical plausibility
    (fleet("offices", cooling_months=[5, 6, 13]), "fleets[2].params.cooling_months", "1 to 12, got 13"),
    (fleet("offices", heating_months=[0]), "fleets[2].params.heating_months", "1 to 12, got 0"),
    (fleet("offices", cooling_setpoint_c=299.0), "fleets[2].params.cooling_setpoint_c", "less than or equal to 40"),
    (fleet("offices", temp_init_c=300.0), "fleets[2].params.temp_init_c", "less than or equal to 60"),
    (fleet("pv", p_dc_kwp=500_000_000), "fleets[0].params.p_dc_kwp", "at most 1000000.0"),
    (fleet("pv", dc_ac_ratio=12.0), "fleets[0].params.dc_ac_ratio", "at most 3"),
    (new_fleet("tcl", cop=25.0), "fleets[5].params.cop", "at most 10"),
    (new_fleet("tcl", substep_s=1e-6), "fleets[5].params.substep_s", "greater than or equal to 1"),
    (new_fleet("industry", p_site_kw=5e9), "fleets[5].params.p_site_kw", "at most 1000000.0"),
    (new_fleet("datacentre", chw_supply_c=-20.0), "fleets[5].params.chw_supply_c", "greater than or equal to 4"),
    ({"weather": {"monthly_ghi_kwh_m2_day": [2.4] * 11 + [4600.0]}}, "weather.monthly_ghi_kwh_m2_day[11]",
     "4600 is outside 0..12 kWh/m2/day"),
    ({"weather": {"monthly_temp_c": [4.8, 6.6, 10.3, 15.6, 20.9, 24.6, 302.0, 28.6, 24.9, 19.9, 14.0, 7.5]}},
     "weather.monthly_temp_c[6]", "302 is outside -90..60 degC"),
    ({"time": {"start": "2024-03-31T02:30:00", "end": "2024-04-01T00:00:00", "timezone": "Europe/Berlin"}},
     "time.start", "2024-03-31T02:30:00 does not exist or is ambiguous in Europe/Berlin"),
    ({"time": {"start": "2024-10-25T00:00:00", "end": "2024-10-27T02:30:00", "timezone": "Europe/Berlin"}},
     "time.end", "daylight-saving change"),
    ({"seed": True}, "seed", "not a boolean"),
    ({"fleets": [{"name": "pv", "count": True}]}, "fleets[0].count", "not a boolean"),
    ({"tariff": {"flat_price_cny_per_kwh": 700.0}}, "tariff.flat_price_cny_per_kwh", "less than or equal to 20"),
    ({"carbon": {"average_kg_per_kwh": 585.0}}, "carbon.average_kg_per_kwh", "less than or equal to 2"),
    # the market and demand-response calls
    ({"market": {"mode": "two_settlement", "gate_closure_hour": 24}}, "market.gate_closure_hour",
     "less than or equal to 23"),
    ({"market": {"mode": "spot"}}, "market.mode", "tariff|two_settlement"),
    ({"market": {"mode": "two_settlement", "tolerance_frac": NAN}}, "market.tolerance_frac", "finite number"),
    ({"market": {"mode": "two_settlement", "mean_cny_per_kwh": 500.0}}, "market.mean_cny_per_kwh",
     "less than or equal to 20"),
    ({"market": {"price_csv": "prices.csv"}}, "market.price_csv", 'read only with mode = "two_settlement"'),
    ({"dr": {"events": [{"name": "a", "kind": "peak_shaving", "start": "2024-07-22T13:00:00",
                         "end": "2024-07-22T15:00:00", "capacity_kw": 1e3, "price_cny_per_kwh": 1e4}]}},
     "dr.events[0].price_cny_per_kwh", "less than or equal to 100"),
]


def _one_line(err: ScenarioError) -> str:
    msg = str(err)
    assert "\n" not in msg
    return msg


def _assert_validate_refuses(override: dict, field: str, words: str) -> None:
    """``vpp.validate`` raises one line naming the file and *field*, with *words* in the reason."""
    with pytest.raises(ScenarioError) as err:
        vpp.validate(scenario(override))
    msg = _one_line(err.value)
    assert msg.startswith(f"<test>: {field}: "), msg
    assert words in msg, msg


@pytest.mark.parametrize("override, field, words", BAD_INPUTS)
def test_bad_input_is_refused_with_file_field_and_reason(override, field, words):
    _assert_validate_refuses(override, field, words)


def test_infinity_still_means_no_limit_where_it_is_documented():
    sc = vpp.validate(scenario({
        "nodes": [{"name": "city", "import_limit_kw": INF}],
        "grid": {"vpp_export_limit_kw": INF, "ramp_limit_kw_per_h": INF},
        "fleets": [{"name": "home_chargers", "params": {"station_limit_kw": INF}},
                   {"name": "offices", "params": {"c_mass_kj_per_m2k": {"dist": "normal", "mean": 110, "std": 20,
                                                                         "low": 50, "high": INF}}}],
    }))
    assert sc.nodes[0].import_limit_kw == INF


def test_a_distribution_is_checked_over_its_whole_support():
    # every draw of this normal would be a plausible setpoint; the untruncated tail is not
    with pytest.raises(ScenarioError, match=r"fleets\[0\]\.params\.tilt_deg: must be at least 0"):
        vpp.validate(scenario(fleet("pv", tilt_deg={"dist": "normal", "mean": 20, "std": 5})))


# Inputs that passed `vpp validate` before it built what run builds and checked
# every number, and then made `vpp run` fail with a traceback (an error on building
# a fleet; a non-finite bound in the LP), hang (a deadband no sub-step can resolve),
# or run to a meaningless end (a NaN initial temperature: self-sufficiency 280; an
# infinite demand charge: infinite cost; an infinite battery: every window fell back).
RUN_REJECTS = [
    (fleet("pv", wind_regime="nope"), "fleets[0].params.wind_regime",
     "'nope' is not a wind regime of the weather (weather.wind_regimes: offshore, onshore)"),
    (fleet("wind", wind_regime="calm"), "fleets[1].params.wind_regime", "'calm' is not a wind regime"),
    (fleet("wind", shear="log_law", hub_height_m=1.0, roughness_length_m=2.0),
     "fleets[1].params.roughness_length_m", "must be below the regime's reference height"),
    ({"weather": {"wind_regimes": {"coastal": {"mean_speed_m_s": 7.0, "ref_height_m": 90.0}}}},
     "fleets[0].params.wind_regime", "'onshore' is not a wind regime of the weather (weather.wind_regimes: coastal)"),
    (new_fleet("tcl", units_per_population=10, deadband_k=1e-6), "fleets[5].params.deadband_k", "too narrow"),
    (fleet("offices", temp_init_c=NAN), "fleets[2].params.temp_init_c", "finite number"),
    (fleet("offices", heating_setpoint_c=NAN), "fleets[2].params.heating_setpoint_c", "finite number"),
    (fleet("pv", p_dc_kwp=INF), "fleets[0].params.p_dc_kwp", "finite number"),
    (fleet("pv", p_dc_kwp={"dist": "choice", "values": [500, INF]}), "fleets[0].params.p_dc_kwp.values[1]",
     "finite number"),
    (fleet("battery", e_max_kwh=INF), "fleets[4].params.e_max_kwh", "finite number"),
    ({"forecast": {"temp_error_k_24h": INF}}, "forecast.temp_error_k_24h", "finite number"),
    ({"tariff": {"demand_charge_cny_per_kw_month": INF}}, "tariff.demand_charge_cny_per_kw_month", "finite number"),
    (fleet("home_chargers", charger_kw=INF), "fleets[3].params.charger_kw", "finite number"),
    ({"strategy": {"options": {"carbon_price_cny_per_t": INF}}}, "strategy.options.carbon_price_cny_per_t",
     "finite number"),
]


@pytest.mark.parametrize("override, field, words", RUN_REJECTS)
def test_validate_refuses_what_run_would_refuse(override, field, words):
    _assert_validate_refuses(override, field, words)


@pytest.mark.parametrize("override, field, words", RUN_REJECTS)
def test_run_at_the_command_line_exits_2_with_one_line(tmp_path, capsys, override, field, words):
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps({"extends": SMALL.as_posix(), **override}), encoding="utf-8")
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {path}: {field}: ") and words in err, err
    assert not (tmp_path / "out").exists()


def test_run_and_validate_read_a_perfect_forecast_variant_with_compares_parser():
    sc = scenario({"time": {"end": "2024-07-23T00:00:00"}})
    vpp.validate(sc, strategy="rule_based:perfect")
    res = vpp.run(sc, strategy="rule_based:perfect")
    assert res.strategy == "rule_based:perfect"
    assert "perfect = true" in res.scenario_toml
    assert "perfect = false" in res.baseline.scenario_toml       # the baseline keeps the scenario's forecasts
    with pytest.raises(ScenarioError, match=r"--strategy: unknown strategy 'nope'"):
        vpp.validate(sc, strategy="nope:perfect")


def test_booleans_are_still_taken_where_they_are_meant():
    sc = vpp.validate(scenario({
        "forecast": {"perfect": True},
        "weather": {"clear_sky": True},
        "fleets": [{"name": "home_chargers", "params": {"v2g": True}}],
        "strategy": {"name": "rule_based", "options": {"cheapest_hours": False}},
    }))
    assert sc.forecast.perfect and sc.strategy.options["cheapest_hours"] is False
