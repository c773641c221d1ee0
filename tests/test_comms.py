"""Setpoints over a lossy, slow network (vpp.comms, [comms]): messages lost and late by hand,
assets holding and falling back, and runs that degrade gracefully."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vpp
from vpp.comms import SetpointLink
from vpp.errors import ScenarioError

STEP_S = 900.0
BASE = np.array([-7.0, -8.0, -9.0])            # each row's baseline request: a marker


def link(loss=0.0, latency_s=0.0, timeout_min=60.0, seed=0):
    return SetpointLink(3, loss, latency_s, timeout_min * 60, STEP_S, np.random.default_rng(seed))


def schedule(first: float, n: int = 4) -> np.ndarray:
    """Rows x steps: row r at step j requests first + 10 r + j."""
    return first + 10 * np.arange(3)[:, None] + np.arange(n)[None, :]


def test_a_perfect_link_passes_the_schedule_through():
    lk = link()
    lk.send(0, schedule(100))
    for k in range(4):
        np.testing.assert_array_equal(lk.setpoint(k, lambda: BASE), schedule(100)[:, k])
    assert lk.setpoint(4, lambda: BASE) is None                            # the schedule ran out: released
    assert lk.counts() == {"messages_sent": 3, "messages_lost": 0, "messages_late": 0, "row_steps_applied": 12,
                           "row_steps_held": 0, "row_steps_fallback": 0}


def test_a_message_later_than_half_a_step_governs_from_the_next_step():
    """Latency 10 min on 15-min steps: floor(600/900 + 1/2) = 1 step late; 5 min: on time."""
    lk = link(latency_s=600)
    lk.send(0, schedule(100))
    assert lk.setpoint(0, lambda: BASE) is None                            # nothing heard yet: baseline
    for k in (1, 2, 3):
        np.testing.assert_array_equal(lk.setpoint(k, lambda: BASE), schedule(100)[:, k])
    lk.send(4, schedule(200))
    np.testing.assert_array_equal(lk.setpoint(4, lambda: BASE), schedule(100)[:, 3])   # holds the last
    np.testing.assert_array_equal(lk.setpoint(5, lambda: BASE), schedule(200)[:, 1])
    assert lk.counts()["messages_late"] == 6 and lk.counts()["row_steps_held"] == 3
    on_time = link(latency_s=300)
    on_time.send(0, schedule(100))
    np.testing.assert_array_equal(on_time.setpoint(0, lambda: BASE), schedule(100)[:, 0])


def test_a_lost_message_holds_until_the_timeout_then_falls_back():
    """Timeout 90 min = 6 steps of silence, counted from the last message (step 0, as a
    watchdog counts). The second message is lost: the last setpoint is held at steps 4
    and 5, the baseline runs from step 6."""
    lk = link(timeout_min=90)
    lk.send(0, schedule(100))
    for k in range(4):
        lk.setpoint(k, lambda: BASE)
    lk.loss_prob = 1.0
    lk.send(4, schedule(200))
    for k in (4, 5):
        np.testing.assert_array_equal(lk.setpoint(k, lambda: BASE), schedule(100)[:, 3])
    assert lk.setpoint(6, lambda: BASE) is None and lk.setpoint(7, lambda: BASE) is None
    c = lk.counts()
    assert c["messages_lost"] == 3 and c["row_steps_held"] == 6 and c["row_steps_fallback"] == 6


def test_rows_mix_fresh_held_and_baseline():
    """Only row 0 hears the second message; row 1 holds; row 2 never heard anything."""
    lk = link(timeout_min=60)
    lk.send(0, schedule(100, 1))
    lk.arrive[:] = [0, 0, np.iinfo(np.int64).max]                          # row 2's first message lost
    lk.setpoint(0, lambda: BASE)
    lk.send(1, schedule(200, 1))
    lk.arrive[:] = [1, np.iinfo(np.int64).max, np.iinfo(np.int64).max]
    np.testing.assert_array_equal(lk.setpoint(1, lambda: BASE), [200.0, 110.0, -9.0])


def test_the_same_step_asked_twice_counts_once():
    lk = link()
    lk.send(0, schedule(100))
    lk.setpoint(0, lambda: BASE)
    lk.setpoint(0, lambda: BASE)
    assert lk.counts()["row_steps_applied"] == 3


def _one_day(comms: dict | None = None):
    d = {"time": {"start": "2024-07-22T00:00:00", "end": "2024-07-23T00:00:00"}}
    return scenario({**d, "comms": comms} if comms is not None else d)


def test_a_perfect_network_is_the_run_without_one():
    plain = vpp.run(_one_day(), strategy="rule_based")
    perfect = vpp.run(_one_day({"loss_prob": 0.0, "latency_s": 0.0}), strategy="rule_based")
    assert plain.nodes.equals(perfect.nodes) and plain.fleets.equals(perfect.fleets)
    assert "comms" not in perfect.tables


def test_with_every_message_lost_the_vpp_runs_as_the_baseline():
    lost = vpp.run(_one_day({"loss_prob": 1.0}), strategy="rule_based")
    baseline = vpp.run(_one_day(), strategy="source_follows_load")
    np.testing.assert_array_equal(lost.nodes.to_numpy(), baseline.nodes.to_numpy())
    assert lost.kpis.loc["comms_lost_frac", "value"] == 1.0
    assert lost.kpis.loc["comms_fallback_frac", "value"] == 1.0


def test_losses_are_counted():
    """(Losses need not raise the cost: over this day, held discharge setpoints lowered the peak
    and left the battery 800 kWh emptier, which storage_energy_change_kwh reports.)"""
    lossy = vpp.run(_one_day({"loss_prob": 0.5, "latency_s": 600}), strategy="rule_based").kpis
    sent = lossy.loc["comms_messages_sent", "value"]
    lost = lossy.loc["comms_lost_frac", "value"]
    assert abs(lost - 0.5) < 4 * np.sqrt(0.25 / sent)                      # binomial, 4 sigma
    assert lossy.loc["comms_late_frac", "value"] == pytest.approx(1 - lost)  # every arriving one is late


def test_an_unknown_fleet_in_comms_is_named():
    with pytest.raises(ScenarioError, match=r"comms\.fleets\[0\]: unknown fleet 'nope'"):
        vpp.validate(_one_day({"loss_prob": 0.1, "fleets": ["nope"]}))
    with pytest.raises(ScenarioError, match=r"comms\.per_fleet\.nope: unknown fleet 'nope'"):
        vpp.validate(_one_day({"per_fleet": {"nope": {"loss_prob": 0.1}}}))


def test_each_fleet_may_have_its_own_network():
    """The batteries lose every message (their own loss_prob over the network's 0), the
    chargers none with a latency of a whole step (their own), the offices get the network's:
    each fleet's comms row shows its own values; a fleet named only in per_fleet crosses."""
    r = vpp.run(_one_day({"loss_prob": 0.0, "latency_s": 0.0, "fleets": ["offices"],
                          "per_fleet": {"battery": {"loss_prob": 1.0},
                                        "home_chargers": {"latency_s": 900.0, "timeout_min": 600}}}),
                strategy="rule_based")
    t = r.tables["comms"].set_index("fleet")
    assert set(t.index) == {"offices", "battery", "home_chargers"}
    assert t.loc["battery", "messages_lost"] == t.loc["battery", "messages_sent"] > 0
    assert t.loc["battery", "row_steps_applied"] == 0
    assert t.loc["home_chargers", "messages_lost"] == 0
    assert t.loc["home_chargers", "messages_late"] == t.loc["home_chargers", "messages_sent"] > 0
    assert t.loc["home_chargers", "row_steps_fallback"] == 50        # 50 chargers before the first message only
    assert t.loc["offices", ["messages_lost", "messages_late", "row_steps_held", "row_steps_fallback"]].sum() == 0


def test_a_network_perfect_for_every_fleet_is_the_run_without_one():
    plain = vpp.run(_one_day(), strategy="rule_based")
    perfect = vpp.run(_one_day({"per_fleet": {"battery": {"loss_prob": 0.0}}}), strategy="rule_based")
    assert plain.nodes.equals(perfect.nodes)
    assert not vpp.load(_one_day({"per_fleet": {"battery": {"loss_prob": 0.2}}})).comms.perfect


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loss=st.floats(0, 1), latency_s=st.floats(0, 7200), timeout_min=st.floats(1, 600),
       telemetry_delay_min=st.floats(0, 240))
def test_more_loss_never_changes_the_baseline_and_never_breaks_a_strategy(loss, latency_s, timeout_min,
                                                                          telemetry_delay_min):
    comms = {"loss_prob": loss, "latency_s": latency_s, "timeout_min": timeout_min,
             "telemetry_delay_min": telemetry_delay_min}
    baseline = vpp.run(_one_day(comms), strategy="source_follows_load")
    assert baseline.nodes.equals(vpp.run(_one_day(), strategy="source_follows_load").nodes)
    ruled = vpp.run(_one_day(comms), strategy="rule_based")
    assert np.isfinite(ruled.kpis.loc["total_cost_cny", "value"])


def test_the_cost_of_faults_is_the_strategy_against_itself_on_a_perfect_network():
    lossy = _one_day({"loss_prob": 0.5, "latency_s": 600})
    cmp = vpp.compare(lossy, ("rule_based", "rule_based:perfect_network"))
    t = cmp.table
    clean = vpp.run(_one_day(), strategy="rule_based").kpis.loc["total_cost_cny", "value"]
    assert t.loc["rule_based:perfect_network", "total_cost_cny"] == clean
    assert t.loc["rule_based", "cost_of_faults_cny"] == (t.loc["rule_based", "total_cost_cny"] - clean)
    assert np.isnan(t.loc["source_follows_load", "cost_of_faults_cny"])
    assert t.loc["rule_based:perfect_network", "comms_messages_sent"] == 0


def test_the_report_draws_what_was_sent_against_what_happened():
    from vpp.dashboards import comms_figure, run_report

    r = vpp.run(_one_day({"loss_prob": 1.0}), strategy="rule_based")
    fig = comms_figure(r)
    traces = {t.name: t for t in fig.data}
    battery = r.tables["comms_steps"].query("fleet == 'battery'")
    np.testing.assert_allclose(traces["battery sent"].y, battery["planned_kw"].to_numpy(), equal_nan=True)
    assert np.isnan(traces["battery in force"].y).all()                   # every row on its baseline
    np.testing.assert_allclose(traces["battery delivered"].y, r.fleets[("battery", "p_kw")].to_numpy())
    assert set(traces["battery baseline"].y) == {100.0} and set(traces["battery held"].y) == {0.0}
    perfect = vpp.run(_one_day({"loss_prob": 0.0, "latency_s": 1.0}), strategy="rule_based")   # 1 s: on time
    steps = perfect.tables["comms_steps"].query("fleet == 'battery'")
    np.testing.assert_array_equal(steps["applied_kw"].to_numpy(), steps["planned_kw"].to_numpy())
    assert "Setpoints over the network" in run_report(r)
    plain = vpp.run(_one_day(), strategy="rule_based")
    assert not comms_figure(plain).data and "Setpoints over the network" not in run_report(plain)


def test_telemetry_delay_shows_the_strategy_the_fleets_as_they_were():
    """Delay 30 min = 2 steps: the battery's initial energy in the window decided at step k is
    the energy recorded at the end of step k - 3, i.e. at the start of step k - 2."""
    from vpp.optimizer import STRATEGIES
    from vpp.testing import RecordingStrategy

    rec = RecordingStrategy(STRATEGIES["rule_based"](STRATEGIES["rule_based"].Options()))
    r = vpp.run(_one_day({"telemetry_delay_min": 30}), strategy=rec)
    e = r.fleets[("battery", "e_kwh")].to_numpy()
    checked = 0
    for problem, _ in rec.calls:
        k = problem.grid.k0
        if k < 3:
            continue
        seen = next(f for f in problem.forms if f.fleet == "battery" and hasattr(f, "e_init_kwh"))
        assert seen.e_init_kwh.sum() == pytest.approx(e[k - 3])
        checked += 1
    assert checked >= 20 and not np.allclose(e[3:], e[2:-1])           # the energy moves: the check can fail


def test_no_telemetry_delay_is_the_run_without_one():
    plain = vpp.run(_one_day(), strategy="rule_based")
    zero = vpp.run(_one_day({"telemetry_delay_min": 0.0}), strategy="rule_based")
    assert plain.nodes.equals(zero.nodes)


@pytest.mark.parametrize("comms", [None, {"loss_prob": 0.5, "latency_s": 600}], ids=["no network", "lossy"])
def test_setpoints_sent_against_power_delivered_by_hand(comms):
    """The battery's setpoints as the strategy returned them (the window in force at each
    step), against each battery's recorded power (its controllable power): planned,
    delivered and row-by-row error by hand equal the setpoints table; lost messages only
    widen the gap."""
    from vpp.optimizer import STRATEGIES
    from vpp.testing import RecordingStrategy

    rec = RecordingStrategy(STRATEGIES["rule_based"](STRATEGIES["rule_based"].Options()))
    sc = _one_day(comms)
    r = vpp.run(sc.model_copy(update={"output": sc.output.model_copy(update={"per_asset": ["battery"]})}),
                strategy=rec)
    windows = {problem.grid.k0: decision.setpoints["battery"] for problem, decision in rec.calls}
    starts = sorted(windows)
    p = r.assets["battery"].to_numpy()
    planned = delivered = error = 0.0
    for k in range(len(r.index)):
        k0 = max(s for s in starts if s <= k)
        sent = windows[k0][:, k - k0]
        planned += sent.sum() * 0.25
        delivered += p[k].sum() * 0.25
        error += np.abs(sent - p[k]).sum() * 0.25
    row = r.tables["setpoints"].set_index("fleet").loc["battery"]
    assert row["planned_kwh"] == pytest.approx(planned, rel=1e-9)
    assert row["delivered_kwh"] == pytest.approx(delivered, rel=1e-9, abs=1e-9)
    assert row["error_kwh"] == pytest.approx(error, rel=1e-9, abs=1e-9)
    assert (error > 100) == (comms is not None)
