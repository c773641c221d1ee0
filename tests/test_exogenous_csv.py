"""CSV sources: the shipped examples load and align; every bad input gives one clear line."""

import importlib.resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.errors import ScenarioError
from vpp.exogenous import build_exogenous
from vpp.exogenous.csvsource import align, read_csv_table
from vpp.scenario import scenario_from_dict

VALUE_TOL = 1e-9  # interval means / interpolation of rounded CSV values: round-off only
CLOSURE_TOL_W_M2 = 1e-6

EXAMPLES = Path(str(importlib.resources.files("vpp.scenarios") / "data"))
NODES = [{"name": "n", "import_limit_kw": 1.0, "export_limit_kw": 1.0}]
FLEETS = [{"name": "f", "type": "any", "node": "n", "count": 1}]


def make_scenario(
    base_dir, start="2024-07-01T00:00:00", end="2024-07-03T00:00:00", step_min=15, **sections
):
    data = {
        "name": "t",
        "time": {"start": start, "end": end, "step_min": step_min},
        "nodes": NODES,
        "fleets": FLEETS,
        **sections,
    }
    return scenario_from_dict(data, str(Path(base_dir) / "s.toml"), Path(base_dir))


def _csv(name):
    return pd.read_csv(EXAMPLES / name, comment="#")


CSV_SECTIONS = {
    "weather": {"source": "csv", "path": "example_weather.csv"},
    "tariff": {"source": "csv", "path": "example_tariff.csv"},
    "carbon": {"source": "csv", "path": "example_carbon.csv"},
}


def test_examples_load_at_15_minutes():
    ex = build_exogenous(make_scenario(EXAMPLES, **CSV_SECTIONS))
    assert len(ex) == 3 * 96  # two days plus the 24 h dispatch horizon
    tariff, weather = _csv("example_tariff.csv"), _csv("example_weather.csv")
    # prices (hourly rows) are held: the quarter hours of 12:00 carry the 12:00 row
    k = 12 * 4
    np.testing.assert_allclose(
        ex.price_import_cny_per_kwh[k : k + 4],
        tariff["price_import_cny_per_kwh"][12],
        atol=VALUE_TOL,
    )
    np.testing.assert_allclose(ex.price_export_cny_per_kwh, 0.4155, atol=VALUE_TOL)
    # weather (hourly rows) is interpolated between row midpoints: the step 12:15-12:30 (midpoint
    # 12:22:30) lies 52.5 of 60 min from the 11:00 row's midpoint (11:30) to the 12:00 row's (12:30)
    t11, t12 = weather["temp_air_c"][11], weather["temp_air_c"][12]
    assert ex.temp_air_c[k + 1] == pytest.approx(t11 + (t12 - t11) * 52.5 / 60, abs=VALUE_TOL)
    w11, w12 = weather["wind_speed_offshore_m_s"][11], weather["wind_speed_offshore_m_s"][12]
    assert ex.wind_speed_m_s["offshore"][k + 1] == pytest.approx(
        w11 + (w12 - w11) * 52.5 / 60, abs=VALUE_TOL
    )
    night = ex.solar_apparent_zenith_deg >= 90
    assert (ex.ghi_w_m2[night] == 0).all() and ex.ghi_w_m2.max() > 300
    assert ex.wind_ref_height_m == {"offshore": 90.0, "onshore": 90.0}


def test_examples_at_hourly_steps_are_interval_means():
    ex = build_exogenous(make_scenario(EXAMPLES, step_min=60, **CSV_SECTIONS))
    weather, carbon = _csv("example_weather.csv"), _csv("example_carbon.csv")
    n = len(ex)
    # hourly rows on hourly steps: identity (measured DNI/DHI are kept)
    for col in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2", "temp_air_c"):
        np.testing.assert_allclose(getattr(ex, col), weather[col][:n], atol=VALUE_TOL, err_msg=col)
    # 30-min carbon rows on hourly steps: the mean of each pair
    pairs = carbon["co2_kg_per_kwh"].to_numpy()[: 2 * n].reshape(n, 2).mean(axis=1)
    np.testing.assert_allclose(ex.co2_kg_per_kwh, pairs, atol=VALUE_TOL)


def test_missing_dni_dhi_are_derived_with_closure(tmp_path):
    w = _csv("example_weather.csv").drop(columns=["dni_w_m2", "dhi_w_m2"])
    w.to_csv(tmp_path / "w.csv", index=False)
    ex = build_exogenous(make_scenario(tmp_path, weather={"source": "csv", "path": "w.csv"}))
    cosz = np.cos(np.radians(ex.solar_apparent_zenith_deg))
    np.testing.assert_allclose(ex.dni_w_m2 * cosz + ex.dhi_w_m2, ex.ghi_w_m2, atol=CLOSURE_TOL_W_M2)
    assert ex.dni_w_m2.max() > 100


def test_naive_times_are_in_the_scenario_zone_and_offsets_are_honoured(tmp_path):
    # the same prices written with UTC times: identical result
    t = _csv("example_tariff.csv")
    utc = pd.to_datetime(t["timestamp"]).dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC")
    t.assign(timestamp=utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        tmp_path / "t.csv", index=False
    )
    a = build_exogenous(make_scenario(EXAMPLES, tariff=CSV_SECTIONS["tariff"]))
    b = build_exogenous(make_scenario(tmp_path, tariff={"source": "csv", "path": "t.csv"}))
    np.testing.assert_allclose(
        a.price_import_cny_per_kwh, b.price_import_cny_per_kwh, atol=VALUE_TOL
    )


# --- bad inputs -------------------------------------------------------------------

GOOD_TARIFF = [
    "timestamp,price_import_cny_per_kwh",
    *[f"2024-07-{d:02d} {h:02d}:00,0.7" for d in (1, 2, 3) for h in range(24)],
]
# the row of day d, hour h is on file line 2 + 24 (d - 1) + h: 2024-07-02 10:00 is line 36


def _edit(lines, old, new):
    return [new if line == old else line for line in lines]


BAD_TARIFFS = [
    # (lines, expected field, expected words in the reason)
    (GOOD_TARIFF[:1] + GOOD_TARIFF[1:5], "timestamp", "cover"),
    (
        [GOOD_TARIFF[0].replace("price_import", "price_imp")] + GOOD_TARIFF[1:],
        "price_import_cny_per_kwh",
        "missing column",
    ),
    (["time,price_import_cny_per_kwh"] + GOOD_TARIFF[1:], "timestamp", "missing column"),
    (
        _edit(GOOD_TARIFF, "2024-07-01 05:00,0.7", "2024-07-01 5h,0.7"),
        "timestamp row 7",
        "ISO 8601",
    ),
    (
        _edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02 10:00,abc"),
        "price_import_cny_per_kwh row 36",
        "'abc'",
    ),
    (
        _edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02 10:00,NaN"),
        "price_import_cny_per_kwh row 36",
        "missing value",
    ),
    (
        _edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02 10:00,"),
        "price_import_cny_per_kwh row 36",
        "empty",
    ),
    (
        _edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02 10:00,inf"),
        "price_import_cny_per_kwh row 36",
        "finite",
    ),
    (
        _edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02 10:00,-0.1"),
        "price_import_cny_per_kwh row 36",
        "negative price",
    ),
    (
        _edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02 08:30,0.7"),
        "timestamp row 36",
        "not after",
    ),
    (
        _edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02 09:00,0.7"),
        "timestamp row 36",
        "not after",
    ),
    (
        _edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02T10:00+08:00,0.7"),
        "timestamp row 36",
        "UTC offset",
    ),
    (
        _edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02 10:00,700"),
        "price_import_cny_per_kwh row 36",
        "700 is outside 0..20 CNY/kWh (looks like CNY/MWh?)",
    ),
    (_edit(GOOD_TARIFF, "2024-07-02 10:00,0.7", "2024-07-02 10:00,0.7,1"), "row 36", "fields"),
    (
        [line for line in GOOD_TARIFF if not line.startswith("2024-07-02 1")],
        "timestamp row 36",
        "gap",
    ),
    (GOOD_TARIFF[:1], "(file)", "no data rows"),
    ([], "(file)", "empty file"),
    (
        ["timestamp,price_import_cny_per_kwh,timestamp"] + [r + ",x" for r in GOOD_TARIFF[1:]],
        "(header) row 1",
        "duplicate column",
    ),
]


@pytest.mark.parametrize("lines, field, words", BAD_TARIFFS)
def test_bad_tariff_csv_gives_one_line(tmp_path, lines, field, words):
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sc = make_scenario(tmp_path, tariff={"source": "csv", "path": "bad.csv"})
    with pytest.raises(ScenarioError) as err:
        build_exogenous(sc)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{tmp_path / 'bad.csv'}: {field}: "), msg
    assert words in msg, msg


def test_line_numbers_count_comment_lines(tmp_path):
    lines = [
        "# provenance note",
        "",
        *_edit(GOOD_TARIFF, "2024-07-01 03:00,0.7", "2024-07-01 03:00,x"),
    ]
    (tmp_path / "c.csv").write_text("\n".join(lines), encoding="utf-8")
    # comment (1), blank (2), header (3), 00:00 (4), ... 03:00 is line 7 in an editor
    with pytest.raises(ScenarioError, match=r"c\.csv: price_import_cny_per_kwh row 7: "):
        build_exogenous(make_scenario(tmp_path, tariff={"source": "csv", "path": "c.csv"}))


def test_missing_file(tmp_path):
    # the message names the scenario's field and the missing file
    with pytest.raises(ScenarioError, match=r"carbon\.path: no such file: .*nope\.csv"):
        build_exogenous(make_scenario(tmp_path, carbon={"source": "csv", "path": "nope.csv"}))


def _weather_lines(edit=None):
    w = _csv("example_weather.csv")
    if edit:
        w = edit(w)
    return w


BAD_WEATHER = [
    (
        lambda w: w.assign(ghi_w_m2=w["ghi_w_m2"].where(w.index != 30, -5.0)),
        "ghi_w_m2 row 32",
        "negative irradiance",
    ),
    (lambda w: w.drop(columns=["dhi_w_m2"]), "dhi_w_m2", "both dni_w_m2 and dhi_w_m2"),
    (
        lambda w: w.drop(columns=["wind_speed_onshore_m_s"]),
        "wind_speed_onshore_m_s",
        "wind regime 'onshore'",
    ),
    (lambda w: w.assign(temp_air_c=w["temp_air_c"] + 273.15), "temp_air_c row 2", "kelvin"),
    (
        lambda w: w.assign(
            wind_speed_offshore_m_s=w["wind_speed_offshore_m_s"].where(w.index != 3, -1.0)
        ),
        "wind_speed_offshore_m_s row 5",
        "negative wind speed",
    ),
    (lambda w: w.iloc[2:], "timestamp", "cover"),
    (
        lambda w: w.assign(ghi_w_m2=w["ghi_w_m2"] * 3.6),          # kJ/m2 per hour, not W/m2
        "ghi_w_m2 row 9",
        "is outside 0..1500 W/m2",
    ),
    (
        lambda w: w.assign(dni_w_m2=w["dni_w_m2"].where(w.index != 3, -2.0)),
        "dni_w_m2 row 5",
        "negative irradiance",
    ),
    (
        lambda w: w.assign(wind_speed_onshore_m_s=w["wind_speed_onshore_m_s"].where(w.index != 3, 90.0)),
        "wind_speed_onshore_m_s row 5",
        "90 is outside 0..75 m/s (is it in km/h or knots?)",
    ),
    (lambda w: w.assign(temp_air_c=w["temp_air_c"] * 1.8 + 32), "temp_air_c row 2", "fahrenheit"),
    (lambda w: w.assign(pressure_pa=1013.0), "pressure_pa row 2", "hPa"),
]


@pytest.mark.parametrize("edit, field, words", BAD_WEATHER)
def test_bad_weather_csv_gives_one_line(tmp_path, edit, field, words):
    _weather_lines(edit).to_csv(tmp_path / "weather.csv", index=False)
    sc = make_scenario(tmp_path, weather={"source": "csv", "path": "weather.csv"})
    with pytest.raises(ScenarioError) as err:
        build_exogenous(sc)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{tmp_path / 'weather.csv'}: {field}: "), msg
    assert words in msg, msg


def test_nonexistent_local_time_needs_an_offset(tmp_path):
    # 2024-03-10 02:30 does not exist in New York (clocks jump from 02:00 to 03:00)
    lines = [
        "timestamp,co2_kg_per_kwh",
        "2024-03-10 01:30,0.5",
        "2024-03-10 02:30,0.5",
        "2024-03-10 03:30,0.5",
    ]
    (tmp_path / "dst.csv").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"dst\.csv: timestamp row 3: .*America/New_York"):
        read_csv_table(tmp_path / "dst.csv", "America/New_York")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.0, 5.0), min_size=8, max_size=60),
    st.sampled_from([5, 10, 15, 20, 30, 60]),
    st.sampled_from([15, 30, 60, 120]),
)
def test_held_alignment_conserves_the_integral(tmp_path_factory, values, row_min, step_min):
    """Prices are held: the integral over the steps equals the CSV's over the same span."""
    d = tmp_path_factory.mktemp("h")
    times = pd.date_range("2024-01-01", periods=len(values), freq=f"{row_min}min")
    pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M"), "p": values}).to_csv(
        d / "p.csv", index=False
    )
    n_steps = (len(values) * row_min) // step_min
    if n_steps == 0:
        return
    index = pd.date_range("2024-01-01", periods=n_steps, freq=f"{step_min}min", tz="Asia/Shanghai")
    table = read_csv_table(d / "p.csv", "Asia/Shanghai")
    got = align(table, np.asarray(values), index, 60 * step_min, hold=True)
    span_min = n_steps * step_min
    t_row = np.arange(len(values)) * row_min
    overlap = np.clip(np.minimum(t_row + row_min, span_min) - t_row, 0, None)
    assert got.sum() * step_min == pytest.approx((np.asarray(values) * overlap).sum(), abs=1e-6)


@pytest.mark.parametrize("value, words", [
    ("585", "585 is outside 0..2 kg/kWh (looks like g/kWh?)"),
    ("-0.1", "negative carbon intensity"),
    ("inf", "not a finite number"),
])
def test_implausible_carbon_intensity_names_the_likely_unit(tmp_path, value, words):
    c = _csv("example_carbon.csv")
    c["co2_kg_per_kwh"] = c["co2_kg_per_kwh"].astype(str).where(c.index != 4, value)
    c.to_csv(tmp_path / "carbon.csv", index=False)
    with pytest.raises(ScenarioError) as err:
        build_exogenous(make_scenario(tmp_path, carbon={"source": "csv", "path": "carbon.csv"}))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{tmp_path / 'carbon.csv'}: co2_kg_per_kwh row 6: "), msg
    assert words in msg, msg
