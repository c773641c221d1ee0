"""Demand-response calls: the LP's payment by hand, the window update, notices
that no strategy sees early, the per-event table against its own definitions,
and bad calls refused in one line."""

import dataclasses
import pathlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_optimizer import NO_EXTRAS, OBJ_TOL, battery, problem, solve

import vpp
from vpp.cli import main
from vpp.dr import DREvent, SettlementBand
from vpp.drcalls import DRCalls, settle_calls
from vpp.errors import ScenarioError
from vpp.exogenous import build_exogenous
from vpp.flex import FixedProfile
from vpp.kpi import vpp_series
from vpp.optimizer import STRATEGIES
from vpp.optimizer.model import DispatchModel
from vpp.scenario import read_scenario_dict, scenario_from_dict
from vpp.testing import RecordingStrategy

SMALL = pathlib.Path(__file__).resolve().parents[1] / "scenarios" / "small_district.toml"


def call(kind="peak_shaving", start=1, end=2, capacity=5.0, price=3.0, baseline=10.0, paid_max=1.2):
    return DREvent(kind, kind, 0, start, end, capacity, price, "pre_event",
                   SettlementBand(paid_max_frac=paid_max), np.full(end - start, baseline))


def load_and_battery(events, e0=10.0):
    """10 kW of load for 3 one-hour blocks at 1 CNY/kWh, and a 10 kW / 20 kWh
    lossless battery that must end where it starts."""
    pr = problem([battery(e0=e0, target=e0, h=3), FixedProfile("load", "n", np.full(3, -10.0))], [1.0, 1.0, 1.0])
    return dataclasses.replace(pr, dr_events=tuple(events))


# -- the LP's payment, by hand ---------------------------------------------------------

def test_a_peak_call_is_paid_up_to_its_cap():
    """Without the call: 30 CNY.  Discharging in block 1 and recharging in another
    block costs nothing; each kWh below the 10 kW baseline earns 3 CNY, up to
    1.2 x 5 = 6 kW.  Optimum 30 - 18 = 12, with at least 6 kW discharged in block 1."""
    dm = solve(load_and_battery([call()]))
    assert dm.objective_cny == pytest.approx(12.0, rel=OBJ_TOL)
    assert dm.setpoints(3)["bat"][0, 1] >= 6.0 - 1e-4
    assert solve(load_and_battery([])).objective_cny == pytest.approx(30.0, rel=OBJ_TOL)


def test_a_valley_call_pays_for_import_above_the_baseline():
    """Charging 5 kW extra in block 1 (import 15 against a 10 kW baseline, cap
    1.0 x 5) and discharging it later earns 15: optimum 15."""
    dm = solve(load_and_battery([call("valley_filling", paid_max=1.0)], e0=10.0))
    assert dm.objective_cny == pytest.approx(15.0, rel=OBJ_TOL)
    assert dm.setpoints(3)["bat"][0, 1] <= -5.0 + 1e-4


def test_import_above_a_peak_baseline_costs_the_calls_price():
    """The LP's chosen linearisation: with no flexibility, a 2 kW overshoot of an
    8 kW baseline costs 3 CNY/kWh (the settlement pays nothing there; the plan
    pays for the shortfall): 30 + 6 = 36."""
    pr = problem([FixedProfile("load", "n", np.full(3, -10.0))], [1.0, 1.0, 1.0])
    dm = solve(dataclasses.replace(pr, dr_events=(call(baseline=8.0),)))
    assert dm.objective_cny == pytest.approx(36.0, rel=OBJ_TOL)


def test_a_call_moves_with_the_window():
    """The same model updated to a window where the call sits in another block
    gives a fresh build's optimum."""
    first = load_and_battery([call(start=1, end=2)])
    dm = DispatchModel(first, NO_EXTRAS)
    assert dm.solve()[0] == "optimal"
    moved = load_and_battery([call(start=2, end=3, capacity=8.0, price=2.0)])
    dm.update(moved)
    assert dm.solve()[0] == "optimal"
    assert dm.objective_cny == pytest.approx(solve(moved).objective_cny, rel=OBJ_TOL)
    assert dm.objective_cny == pytest.approx(30.0 - 2.0 * 9.6, rel=OBJ_TOL)


# -- runs ------------------------------------------------------------------------------

def small(events, history="run", end="2024-07-24T00:00:00"):
    d = read_scenario_dict(SMALL)
    d["time"]["end"] = end
    d["dr"] = {"history": history, "events": events}
    return scenario_from_dict(d, "<dr>", SMALL.parent)


def event(name="e", kind="peak_shaving", start="2024-07-23T13:00:00", end="2024-07-23T15:00:00", **kw):
    return {"name": name, "kind": kind, "start": start, "end": end, "capacity_kw": 2000.0,
            "baseline": "pre_event", **kw}


@settings(max_examples=4, deadline=None)
@given(notice_h=st.lists(st.floats(0.25, 20.0), min_size=2, max_size=2),
       start_h=st.lists(st.integers(2, 20), min_size=2, max_size=2, unique=True))
def test_no_strategy_sees_a_call_before_its_notice(notice_h, start_h):
    """Two calls on the second day, announced at random times: in every window
    the problem holds exactly the calls announced by its start that have not ended."""
    evs = [event(f"e{i}", start=f"2024-07-23T{h:02d}:00:00", end=f"2024-07-23T{h + 1:02d}:00:00",
                 notice_h=n) for i, (h, n) in enumerate(zip(sorted(start_h), notice_h, strict=True))]
    assert_calls_seen_from_their_notice(small(evs))


def assert_calls_seen_from_their_notice(sc):
    rec = RecordingStrategy(STRATEGIES["rule_based"]())
    vpp.run(sc, strategy=rec)
    t0 = sc.time.start_ts
    step = sc.time.step_min * 60
    for pr, _ in rec.calls:
        k = pr.grid.k0
        want = set()
        for e in sc.dr.events:
            notice = int(np.ceil(max((sc.dr_notice_ts(e) - t0).total_seconds(), 0.0) / step))
            end = int((sc.time._ts(e.end) - t0).total_seconds() / step)
            if notice <= k < end:
                want.add(e.name)
        assert {e.name for e in pr.dr_events} == want
        assert all(e.notice_step <= k for e in pr.dr_events)


def test_the_notice_check_fails_on_an_engine_that_announces_early(monkeypatch):
    monkeypatch.setattr(DRCalls, "schedule", lambda self: [(0, i) for i in range(len(self.configs))])
    with pytest.raises(AssertionError):
        assert_calls_seen_from_their_notice(small([event(notice_h=2.0)], history="baseline"))


@pytest.fixture(scope="module")
def answered():
    return vpp.run(small([event(notice_h=24.0, baseline="last5_working_days")], history="baseline"),
                   strategy="source_load_interaction")


def test_the_event_table_follows_its_definitions(answered):
    t = answered.tables["dr_events"].iloc[0]
    base = answered.baseline.tables["dr_events"].iloc[0]
    dt = 0.25
    metered = answered.nodes.xs("grid_import_kw", axis=1, level="quantity").sum(axis=1) \
        - answered.nodes.xs("grid_export_kw", axis=1, level="quantity").sum(axis=1)
    window = metered[(metered.index >= t["start"]) & (metered.index < t["end"])]
    assert t["metered_kwh"] == pytest.approx(window.sum() * dt)
    assert t["delivered_kwh"] == pytest.approx(t["baseline_last5_working_days_kwh"] - t["metered_kwh"])
    assert t["history"] == "baseline"
    assert t["counterfactual_kwh"] == pytest.approx(base["metered_kwh"])
    assert t["true_delivered_kwh"] == pytest.approx(t["counterfactual_kwh"] - t["metered_kwh"])
    assert base["true_delivered_kwh"] == 0.0                          # the baseline does not respond
    assert base["comfort_cost_kh"] == 0.0 and base["service_cost_kwh"] == 0.0
    assert t["bid_kwh"] == pytest.approx(2000.0 * 2.0)
    paid = min(t["delivered_kwh"], 1.2 * t["bid_kwh"]) if t["delivered_ratio"] >= 0.5 else 0.0
    assert t["payment_cny"] == pytest.approx(1.5 * paid)
    assert answered.kpis.loc["dr_payment_cny", "value"] == pytest.approx(t["payment_cny"])
    b = answered.baseline.nodes
    cf = b.xs("grid_import_kw", axis=1, level="quantity").sum(axis=1) - b.xs("grid_export_kw", axis=1,
                                                                             level="quantity").sum(axis=1)
    after = (metered.index >= t["end"]) & (metered.index < t["end"] + pd.Timedelta(hours=3))
    before = (metered.index >= t["start"] - pd.Timedelta(hours=3)) & (metered.index < t["start"])
    assert t["rebound_kwh"] == pytest.approx((metered[after] - cf[after]).sum() * dt)
    assert t["pre_event_shift_kwh"] == pytest.approx((metered[before] - cf[before]).sum() * dt)


def test_the_cost_of_responding_counts_the_hours_around_the_call():
    """Comfort and service shortfalls count from 3 h before the call to 3 h after
    it, run minus counterfactual; a step outside that span counts nothing."""
    sc = small([event(notice_h=6.0)])                                 # 13:00-15:00, 15-minute steps
    calls = DRCalls(sc, None, build_exogenous(sc))
    start, end = calls.windows[0]
    zeros = dict.fromkeys(("green_local_kw", "comfort_violation_kh", "unserved_kwh"), 0.0)
    run = pd.DataFrame({"net_import_kw": 100.0} | zeros, index=calls.timeline.index)
    cf = run.copy()
    comfort, unserved = run.columns.get_loc("comfort_violation_kh"), run.columns.get_loc("unserved_kwh")
    run.iloc[start - 12, comfort], run.iloc[start - 13, comfort] = 0.5, 7.0         # 10:00 in, 09:45 out
    run.iloc[end + 11, unserved], run.iloc[end + 12, unserved] = 4.0, 9.0           # 17:45 in, 18:00 out
    cf.iloc[start + 2, comfort] = 0.2
    t = settle_calls(calls, run, cf)[0].iloc[0]
    assert t["comfort_cost_kh"] == pytest.approx(0.3)
    assert t["service_cost_kwh"] == pytest.approx(4.0)


def test_the_centralised_strategy_answers_the_call(answered):
    """It is paid and delivers against the true counterfactual; the baseline does not."""
    t = answered.tables["dr_events"].iloc[0]
    assert t["true_delivered_kwh"] > 0.25 * t["bid_kwh"]
    assert t["payment_cny"] > 0
    assert answered.kpis.loc["dr_payment_cny", "baseline"] == 0.0


def test_the_notice_is_an_event_of_the_run(answered):
    notices = answered.events[answered.events["kind"] == "dr_notice"]
    assert len(notices) == 1 and "e: peak_shaving" in notices["detail"].iloc[0]


# -- bad calls ---------------------------------------------------------------------------

@pytest.mark.parametrize("events, where", [
    ([event(start="2024-07-25T13:00:00", end="2024-07-25T14:00:00")], r"dr\.events\[0\]\.start: .* outside the run"),
    ([event(), event("f", start="2024-07-23T14:00:00", end="2024-07-23T16:00:00")],
     r"dr\.events\[1\]\.start: overlaps event 'e'"),
    ([event(paid_min_frac=1.5, paid_max_frac=1.2)], r"dr\.events\[0\]\.paid_min_frac: 1.5 is above"),
    ([event(notice="2024-07-23T14:00:00")], r"dr\.events\[0\]\.notice: .* after the event starts"),
    ([event(baseline="median_of_3")], r"dr\.events\[0\]\.baseline: .*unknown baseline"),
    ([event(start="2024-07-23T13:05:00")], r"dr\.events\[0\]\.start: .* not on a step"),
    ([event(baseline="last5_working_days")], r"dr\.events\[0\]\.baseline: last5_working_days needs 5 prior"),
    ([event(notice_h=48.0)], r"dr\.events\[0\]\.notice: announced when the run starts"),
])
def test_a_bad_call_is_one_clear_error(events, where):
    with pytest.raises(ScenarioError, match=where):
        vpp.validate(small(events))


def test_the_cli_refuses_a_bad_call_with_exit_2(tmp_path, capsys):
    text = SMALL.read_text() + ('\n[dr]\nhistory = "run"\n[[dr.events]]\nname = "e"\nkind = "peak_shaving"\n'
                                'start = 2024-07-23T13:00:00\nend = 2024-07-23T12:00:00\ncapacity_kw = 10\n')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dr.events[0].end" in err[0]


# -- calls from a CSV and from the seeded generator -----------------------------------------

def with_csv(tmp_path, text, events=()):
    path = tmp_path / "calls.csv"
    path.write_text(text)
    d = read_scenario_dict(SMALL)
    d["dr"] = {"history": "run", "events_csv": str(path), "events": list(events)}
    return scenario_from_dict(d, "<dr>", SMALL.parent)


CSV_HEAD = "name,kind,start,end,notice_h,capacity_kw,baseline\n"


def test_calls_are_read_from_a_csv(tmp_path):
    sc = with_csv(tmp_path, CSV_HEAD + "c1,valley_filling,2024-07-23T11:00:00,2024-07-23T12:00:00,6,800,pre_event\n")
    calls = DRCalls(sc).configs
    got = [(c.name, c.kind, c.capacity_kw, c.price_cny_per_kwh) for c in calls]
    assert got == [("c1", "valley_filling", 800.0, 1.5)]
    vpp.validate(sc)


@pytest.mark.parametrize("row, where", [
    ("c1,peak_shaving,2024-07-23T11:00:00,2024-07-23T12:00:00,6,-5,pre_event", r"row 2, capacity_kw: .*greater than 0"),
    ("c1,peak_shaving,2024-07-23T13:30:00,2024-07-23T14:00:00,6,5,pre_event", r"row 2, start: overlaps event 'e'"),
    ("c1,surge,2024-07-23T11:00:00,2024-07-23T12:00:00,6,5,pre_event", r"row 2, kind: "),
])
def test_a_bad_csv_row_is_named(tmp_path, row, where):
    with pytest.raises(ScenarioError, match=r"dr\.events_csv: .*calls\.csv " + where):
        vpp.validate(with_csv(tmp_path, CSV_HEAD + row + "\n", [event()]))


def generated(prob, hot_c=20.0, events=()):
    d = read_scenario_dict(SMALL)
    d["dr"] = {"events": list(events), "generator": {"capacity_kw": 1000.0, "hot_day_c": hot_c,
                                                      "peak_call_prob": prob}}
    sc = scenario_from_dict(d, "<dr>", SMALL.parent)
    return [c.name for c in DRCalls(sc, None, build_exogenous(sc)).configs]


@pytest.mark.parametrize("field, value", [("capacity_kw", 2e8), ("price_cny_per_kwh", 150.0), ("hot_day_c", 95.0)])
def test_a_generator_out_of_the_calls_bounds_is_refused_when_read(field, value):
    """The generator makes [[dr.events]] calls, so it has their bounds: out of them the scenario
    is refused when read (before, the generated call failed pydantic's check mid-run)."""
    d = read_scenario_dict(SMALL)
    d["dr"] = {"generator": {"capacity_kw": 1000.0, field: value}}
    with pytest.raises(ScenarioError, match=rf"dr\.generator\.{field}"):
        scenario_from_dict(d, "<dr>", SMALL.parent)


def test_the_generator_calls_on_hot_working_days_by_its_probability():
    """The small district's two days are hot working days (Monday and Tuesday in July)."""
    assert generated(1.0) == ["peak_shaving_2024-07-22", "peak_shaving_2024-07-23"]
    assert generated(0.0) == []
    assert generated(1.0, hot_c=60.0) == []
    assert generated(0.5) == generated(0.5)                               # seeded
    listed = generated(1.0, events=[event()])                             # a listed call's day is left alone
    assert listed == ["e", "peak_shaving_2024-07-22"]


# -- the report's view of the calls ---------------------------------------------------------

def test_the_report_shows_each_call_with_its_baselines_band_and_counterfactual(answered):
    from vpp.dashboards.figures import dr_events_figure
    from vpp.dashboards.report import run_report

    fig = dr_events_figure(answered)
    names = {t.name for t in fig.data}
    assert {"metered net import", "true counterfactual", "paid band", "baseline: last5_working_days"} <= names
    band = [t for t in fig.data if t.name == "paid band"]
    base = [t for t in fig.data if t.name == "baseline: last5_working_days"][0]
    np.testing.assert_allclose(band[0].y, np.asarray(base.y) - 0.5 * 2000.0)     # the small district is in kW
    assert "Demand-response calls" in run_report(answered)


def test_a_run_without_calls_says_so():
    from vpp.dashboards.figures import dr_events_figure

    res = vpp.run(small([]), strategy="source_follows_load")
    assert "dr_events" not in res.tables
    assert "No demand-response call" in dr_events_figure(res).layout.annotations[0].text


# -- capacity bidding -------------------------------------------------------------------------

def test_the_centralised_strategy_offers_what_its_plan_delivers():
    """A 4 kW battery behind a 10 kW call: the plan discharges 4 kW in the call's
    block, so the offer is 4 kW (a planned ratio of 1), not the 10 kW asked."""
    pr = problem([battery(p_kw=4.0, e0=10.0, target=10.0, h=3), FixedProfile("load", "n", np.full(3, -10.0))],
                 [1.0, 1.0, 1.0])
    e = call(capacity=10.0)
    pr = dataclasses.replace(pr, dr_events=(e,))
    for name in ("source_load_interaction", "virtual_battery"):
        assert STRATEGIES[name]().bid_kw(pr, e) == pytest.approx(4.0, abs=1e-4)
    for name in ("rule_based", "price_signal", "source_follows_load"):
        assert STRATEGIES[name]().bid_kw(pr, e) is None


def test_a_run_settles_each_call_against_the_strategys_offer():
    """A call announced 6 h ahead, inside the small district's 12 h horizon (a
    call beyond the horizon at its notice is offered as requested)."""
    answered = vpp.run(small([event(notice_h=6.0, capacity_kw=5000.0)]), strategy="source_load_interaction")
    t = answered.tables["dr_events"].iloc[0]
    bids = answered.tables["dr_bids"]
    assert t["capacity_kw"] == pytest.approx(float(bids.loc[bids["event"] == "e", "bid_kw"].iloc[0]))
    assert t["capacity_kw"] <= t["requested_kw"]
    assert t["bid_kwh"] == pytest.approx(t["capacity_kw"] * 2.0)
    assert "offered" in answered.events.loc[answered.events["kind"] == "dr_notice", "detail"].iloc[0]


def test_a_history_simulated_by_the_strategy_itself_moves_its_baseline():
    """dr.history = "strategy": the baselines come from the strategy's own operation;
    the baseline strategy's history (and so its settlement) is the same either way."""
    calls = [event(notice_h=6.0, baseline="last5_working_days")]
    own = vpp.run(small(calls, history="strategy"), strategy="rule_based")
    shared = vpp.run(small(calls, history="baseline"), strategy="rule_based")
    a, b = own.tables["dr_events"].iloc[0], shared.tables["dr_events"].iloc[0]
    assert a["history"] == "strategy" and b["history"] == "baseline"
    assert a["baseline_last5_working_days_kwh"] != pytest.approx(b["baseline_last5_working_days_kwh"], rel=1e-6)
    pd.testing.assert_frame_equal(own.baseline.tables["dr_events"].drop(columns="history"),
                                  shared.baseline.tables["dr_events"].drop(columns="history"))


def test_the_counterfactual_can_be_the_strategy_itself_without_the_calls():
    """dr.counterfactual = "strategy": each call is measured against the same strategy
    run on the same draws without calls (checked against that run made separately)."""
    calls = [event(notice_h=6.0, kind="valley_filling", start="2024-07-23T11:00:00", end="2024-07-23T13:00:00")]
    sc = small(calls)
    sc = sc.model_copy(update={"dr": sc.dr.model_copy(update={"counterfactual": "strategy"})})
    res = vpp.run(sc, strategy="rule_based")
    alone = vpp.run(small([]), strategy="rule_based")
    t = res.tables["dr_events"].iloc[0]
    net = alone.nodes.xs("grid_import_kw", axis=1, level="quantity").sum(axis=1) \
        - alone.nodes.xs("grid_export_kw", axis=1, level="quantity").sum(axis=1)
    window = (net.index >= t["start"]) & (net.index < t["end"])
    assert t["counterfactual_kwh"] == pytest.approx(net[window].sum() * 0.25)
    assert t["true_delivered_kwh"] == pytest.approx(t["metered_kwh"] - t["counterfactual_kwh"])
    green = vpp_series(res)["green_local_kw"] - vpp_series(alone)["green_local_kw"]
    assert t["green_absorbed_kwh"] == pytest.approx(green[window].sum() * 0.25)
