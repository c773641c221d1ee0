"""The two-settlement market's settlement and generated prices against hand values."""

import numpy as np
import pandas as pd
import pytest

from vpp.market import PriceShape, generate_prices, settle_market


def test_a_position_kept_costs_the_day_ahead_price_only():
    s = settle_market([100.0, 50.0], [100.0, 50.0], np.array([0.4, 0.8]), np.array([1.0, -1.0]), 0.25, 0.1, 0.5)
    assert s.day_ahead_cny == pytest.approx((100 * 0.4 + 50 * 0.8) * 0.25)
    assert s.real_time_cny == 0.0 and s.penalty_cny == 0.0 and s.deviation_kwh == 0.0


def test_deviations_pay_the_real_time_price_and_beyond_the_band_a_penalty():
    """Position 100 kW in both steps, tolerance 10 %; metered 105 (inside the band) and
    70 (30 kW short, 20 kW beyond the band); one hour each."""
    s = settle_market([100.0, 100.0], [105.0, 70.0], np.array([0.5, 0.5]), np.array([0.9, 0.3]), 1.0, 0.1, 0.2)
    assert s.day_ahead_cny == pytest.approx(100.0)
    assert s.real_time_cny == pytest.approx(5 * 0.9 - 30 * 0.3)         # buy 5 more, sell 30 back
    assert s.penalty_cny == pytest.approx(20 * 0.2)
    assert s.deviation_kwh == pytest.approx(35.0)
    assert s.penalised_kwh == pytest.approx(20.0)
    assert s.net_cny == pytest.approx(100.0 + 4.5 - 9.0 + 4.0)


def test_an_exporting_position_earns_the_day_ahead_price():
    s = settle_market([-40.0], [-40.0], np.array([0.3]), np.array([0.9]), 1.0, 0.0, 1.0)
    assert s.day_ahead_cny == pytest.approx(-12.0)


def test_generated_prices_follow_the_stated_shape():
    """Without real-time noise: the level at night, a dip with the sun (negative at
    full sun with solar_dip_frac > 1), the evening peak and the heat term."""
    idx = pd.date_range("2024-07-22", periods=96, freq="15min", tz="Asia/Shanghai")
    ghi = np.where((idx.hour >= 11) & (idx.hour < 14), 1000.0, 0.0)
    temp = np.where(idx.hour == 15, 30.0, 20.0)
    shape = PriceShape(mean_cny_per_kwh=0.4, evening_peak_frac=0.5, solar_dip_frac=1.2, heat_frac_per_k=0.05,
                       rt_noise_frac=0.0)
    da, rt = generate_prices(idx, ghi, temp, shape, np.random.default_rng(0))
    at = {h: da[idx.hour * 4 + idx.minute // 15 == h * 4][0] for h in (3, 12, 15, 20)}
    assert at[3] == pytest.approx(0.4)
    assert at[12] == pytest.approx(0.4 * (1 - 1.2))                     # negative at noon
    assert at[15] == pytest.approx(0.4 * (1 + 0.05 * 4))
    assert at[20] == pytest.approx(0.4 * 1.5)
    np.testing.assert_array_equal(rt, da)


def test_real_time_noise_has_the_stated_spread_and_memory():
    idx = pd.date_range("2024-01-01", periods=96 * 400, freq="15min", tz="Asia/Shanghai")
    shape = PriceShape(mean_cny_per_kwh=0.5, evening_peak_frac=0.0, solar_dip_frac=0.0, heat_frac_per_k=0.0,
                       rt_noise_frac=0.2, rt_noise_h=2.0)
    da, rt = generate_prices(idx, np.zeros(len(idx)), np.zeros(len(idx)), shape, np.random.default_rng(1))
    e = (rt - da) / (0.5 * 0.2)
    assert e.std() == pytest.approx(1.0, rel=0.05)
    lag = np.corrcoef(e[:-8], e[8:])[0, 1]                              # 2 h later: exp(-1)
    assert lag == pytest.approx(np.exp(-1.0), abs=0.05)


# -- the optimizer's deviation terms, by hand ---------------------------------------------------

def test_the_plan_pays_the_penalty_beyond_the_band():
    """A fixed 10 kW load, import priced 1 CNY/kWh, one-hour blocks.  Positions of 10
    and 5 kW with a 10 % band and 2 CNY/kWh penalty: block 1 deviates 10 - 5.5 = 4.5 kWh
    beyond the band.  Cost 20 + 9 = 29; without a position, 20."""
    import dataclasses

    from test_optimizer import OBJ_TOL, problem, solve

    from vpp.flex import FixedProfile

    pr = problem([FixedProfile("load", "n", np.full(2, -10.0))], [1.0, 1.0], export_prices=[1.0, 1.0])
    assert solve(pr).objective_cny == pytest.approx(20.0, rel=OBJ_TOL)
    held = dataclasses.replace(pr, position_kw=np.array([10.0, 5.0]), deviation_tolerance_frac=0.1,
                               deviation_penalty_cny_per_kwh=2.0)
    assert solve(held).objective_cny == pytest.approx(29.0, rel=OBJ_TOL)


def test_a_battery_holds_the_position_where_the_penalty_pays():
    """Positions 10 then 0 kW against a 10 kW load, no band, penalty 5 CNY/kWh, a
    lossless 10 kW / 10 kWh battery starting full and free to end empty: discharging
    10 kW in block 1 meets the position; cost 10 (block 0) + 0."""
    import dataclasses

    from test_optimizer import OBJ_TOL, battery, problem, solve

    from vpp.flex import FixedProfile

    pr = problem([battery(e_max=10.0, e0=10.0, target=0.0), FixedProfile("load", "n", np.full(2, -10.0))],
                 [1.0, 1.0], export_prices=[1.0, 1.0])
    held = dataclasses.replace(pr, position_kw=np.array([10.0, 0.0]), deviation_tolerance_frac=0.0,
                               deviation_penalty_cny_per_kwh=5.0)
    dm = solve(held)
    assert dm.objective_cny == pytest.approx(10.0, rel=OBJ_TOL)
    assert dm.setpoints(2)["bat"][0, 1] == pytest.approx(10.0, abs=1e-4)


# -- runs: gate closure, causality, settlement ----------------------------------------------------

def market_run(strategy, recorder=None):
    import pathlib

    import vpp
    from vpp.scenario import read_scenario_dict, scenario_from_dict
    from vpp.testing import RecordingStrategy

    small = pathlib.Path(__file__).resolve().parents[1] / "scenarios" / "small_district.toml"
    d = read_scenario_dict(small)
    d["market"] = {"mode": "two_settlement", "gate_closure_hour": 12}
    d["dispatch"]["horizon_h"] = 24                   # windows before the gate reach the next day
    sc = scenario_from_dict(d, "<market>", small.parent)
    rec = RecordingStrategy(vpp.optimizer.STRATEGIES[strategy]()) if recorder else None
    return vpp.run(sc, strategy=rec or strategy), rec


def test_positions_are_seen_only_once_committed_and_never_move():
    """Day 1 is committed at the run's start, day 2 at 12:00 on day 1; a window
    before that noon sees day 2 uncommitted (NaN), a window after sees the
    position the run settles."""
    assert_positions_causal(*market_run("source_load_interaction", recorder=True))


def test_the_causality_check_fails_on_a_gate_that_closes_at_the_start(monkeypatch):
    from vpp.trading import Trading

    gates = Trading.gates
    monkeypatch.setattr(Trading, "gates", lambda self: [(0, d0, d1) for _, d0, d1 in gates(self)])
    with pytest.raises(AssertionError):
        assert_positions_causal(*market_run("source_load_interaction", recorder=True))


def assert_positions_causal(res, rec):
    table = res.tables["market"]
    settled = table["position_kw"].to_numpy()
    assert np.isfinite(settled).all()
    for pr, _ in rec.calls:
        g = pr.grid
        first = g.k0 + g.starts
        day2 = first >= 96
        if g.k0 < 48:
            assert day2.any() or g.k0 + g.n_steps <= 96
            assert np.isnan(pr.position_kw[day2]).all()
        whole = g.starts + g.steps_per_block <= 192 - g.k0
        mean = np.add.reduceat(np.append(settled, np.zeros(400))[g.k0:g.k0 + g.n_steps], g.starts) / g.steps_per_block
        known = np.isfinite(pr.position_kw) & whole
        np.testing.assert_allclose(pr.position_kw[known], mean[known])


def test_the_market_kpis_settle_the_table():
    from vpp.market import settle_market

    res, _ = market_run("source_follows_load")
    t = res.tables["market"]
    s = settle_market(t["position_kw"], t["metered_kw"], t["da_cny_per_kwh"].to_numpy(),
                      t["rt_cny_per_kwh"].to_numpy(), 0.25, 0.1, 0.1)
    k = res.kpis["value"]
    assert k["market_day_ahead_cny"] == pytest.approx(s.day_ahead_cny)
    assert k["market_penalty_cny"] == pytest.approx(s.penalty_cny)
    assert k["total_cost_cny"] == pytest.approx(s.net_cny + k["demand_charge_cny"])
    assert (res.events["kind"] == "da_commit").sum() == 2


def test_the_report_shows_the_market():
    from vpp.dashboards.figures import market_figure
    from vpp.dashboards.report import run_report

    res, _ = market_run("source_follows_load")
    fig = market_figure(res)
    names = {t.name for t in fig.data}
    assert {"day-ahead position", "metered net import", "deviation", "day-ahead price", "real-time price"} <= names
    metered = [t for t in fig.data if t.name == "metered net import"][0]
    np.testing.assert_allclose(metered.y, res.tables["market"]["metered_kw"])       # the small district is in kW
    assert "Day-ahead market" in run_report(res)


def _csv_market(tmp_path, rows):
    import pathlib

    from vpp.scenario import read_scenario_dict, scenario_from_dict

    small = pathlib.Path(__file__).resolve().parents[1] / "scenarios" / "small_district.toml"
    path = tmp_path / "prices.csv"
    path.write_text("timestamp,da_cny_per_kwh,rt_cny_per_kwh\n" + rows)
    d = read_scenario_dict(small)
    d["market"] = {"mode": "two_settlement", "price_csv": str(path)}
    return scenario_from_dict(d, "<market>", small.parent)


def test_prices_are_read_from_a_csv(tmp_path):
    """Hourly rows held over their hour: -0.1 CNY/kWh day-ahead at noon, 0.5 otherwise."""
    import vpp

    hours = pd.date_range("2024-07-22", "2024-07-25", freq="h", inclusive="left")
    rows = "".join(f"{t:%Y-%m-%dT%H:%M:%S},{-0.1 if t.hour == 12 else 0.5},0.6\n" for t in hours)
    res = vpp.run(_csv_market(tmp_path, rows), strategy="source_follows_load")
    t = res.tables["market"].set_index("time")
    assert (t["da_cny_per_kwh"].between_time("12:00", "12:45") == -0.1).all()
    assert (t["da_cny_per_kwh"].between_time("13:00", "23:45") == 0.5).all()
    assert (t["rt_cny_per_kwh"] == 0.6).all()


def test_a_bad_price_row_is_one_clear_error(tmp_path):
    import vpp
    from vpp.errors import ScenarioError

    hours = pd.date_range("2024-07-22", "2024-07-25", freq="h", inclusive="left")
    rows = "".join(f"{t:%Y-%m-%dT%H:%M:%S},0.5,{'cheap' if t.hour == 5 else 0.6}\n" for t in hours)
    with pytest.raises(ScenarioError, match=r"prices\.csv.*rt_cny_per_kwh.*'cheap'"):
        vpp.validate(_csv_market(tmp_path, rows))


def test_a_call_in_a_market_is_answered_and_both_are_settled():
    """Demand response and the market together: the call is offered and settled,
    the position settled, and the total cost nets both."""
    import pathlib

    import vpp
    from vpp.scenario import read_scenario_dict, scenario_from_dict

    small = pathlib.Path(__file__).resolve().parents[1] / "scenarios" / "small_district.toml"
    d = read_scenario_dict(small)
    d["market"] = {"mode": "two_settlement"}
    d["dr"] = {"events": [{"name": "e", "kind": "peak_shaving", "start": "2024-07-23T16:00:00",
                           "end": "2024-07-23T18:00:00", "notice_h": 6.0, "capacity_kw": 1000.0}]}
    res = vpp.run(scenario_from_dict(d, "<both>", small.parent), strategy="source_load_interaction")
    k = res.kpis["value"]
    t = res.tables["dr_events"].iloc[0]
    assert 0.0 <= t["capacity_kw"] <= t["requested_kw"]          # the plan's offer (it may see nothing to gain)
    assert np.isfinite(res.tables["market"]["position_kw"]).all()
    market = k["market_day_ahead_cny"] + k["market_real_time_cny"] + k["market_penalty_cny"]
    assert k["total_cost_cny"] == pytest.approx(market + k["demand_charge_cny"] - k["dr_payment_cny"]
                                                + k["dr_penalty_cny"])
