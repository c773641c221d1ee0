"""Run-time estimates (vpp.estimate): the extrapolation and demand response's extra
simulations by hand, on a fake clock; a short run is timed whole; the CLI prints it."""

from __future__ import annotations

import pytest
from conftest import SMALL, scenario

import vpp.api
from vpp.cli import main
from vpp.estimate import PROBE_DAYS, estimate_run_time

SETUP_S = {"source_follows_load": 1.0, "rule_based": 2.0}
PER_DAY_S = {"source_follows_load": 0.5, "rule_based": 3.5}     # rule_based's run includes the baseline's day


def _fake(monkeypatch):
    """``vpp.run`` advancing a fake clock by SETUP_S + PER_DAY_S * days; returns the calls."""
    now, calls = [0.0], []

    def run(sc, name=None):
        days = (sc.time.end_ts - sc.time.start_ts).days
        calls.append((days, name, len(sc.dr.events)))
        now[0] += SETUP_S[name] + PER_DAY_S[name] * days

    monkeypatch.setattr(vpp.api, "run", run)
    return (lambda: now[0]), calls


def _week(**dr):
    return scenario({"time": {"start": "2024-07-22T00:00:00", "end": "2024-07-29T00:00:00"}, **dr})


def test_a_week_is_extrapolated_from_its_first_days(monkeypatch):
    clock, calls = _fake(monkeypatch)
    e = estimate_run_time(_week(), "rule_based", clock=clock)
    assert e.setup_s == 2.0 and e.per_day_s == 3.5 and e.dr_s == 0
    assert e.total_s == pytest.approx(2.0 + 3.5 * 7)
    assert sorted(d for d, _, _ in calls) == sorted(PROBE_DAYS * 2)


def test_demand_response_adds_its_history_and_counterfactual_runs(monkeypatch):
    """history = "strategy" (21 days): the baseline's 21 days (1 + 0.5 x 21 s) and the
    strategy's own (1 + 3 x 21 s: its day less the baseline's); counterfactual = "strategy":
    its own run again without the calls (1 + 3 x 7 s).  The probes have no calls."""
    clock, calls = _fake(monkeypatch)
    call = {"name": "peak", "kind": "peak_shaving", "start": "2024-07-23T13:00:00", "end": "2024-07-23T15:00:00",
            "capacity_kw": 100, "notice_h": 24}
    sc = _week(dr={"events": [call], "history": "strategy", "history_days": 21, "counterfactual": "strategy"})
    e = estimate_run_time(sc, "rule_based", clock=clock)
    assert e.dr_s == pytest.approx((1 + 0.5 * 21) + (1 + 3 * 21) + (1 + 3 * 7))
    assert e.total_s == pytest.approx(2.0 + 3.5 * 7 + e.dr_s)
    assert all(n_calls == 0 for _, _, n_calls in calls)


def test_the_baseline_alone_is_probed_once_per_length(monkeypatch):
    clock, calls = _fake(monkeypatch)
    e = estimate_run_time(_week(), "source_follows_load", clock=clock)
    assert e.total_s == pytest.approx(1.0 + 0.5 * 7) and len(calls) == len(PROBE_DAYS)


def test_a_short_run_is_timed_whole(monkeypatch):
    clock, calls = _fake(monkeypatch)
    sc = scenario({"time": {"start": "2024-07-22T00:00:00", "end": "2024-07-24T00:00:00"}})
    e = estimate_run_time(sc, "rule_based", clock=clock)
    assert e.timed_whole and e.total_s == 2.0 + 3.5 * 2 and calls == [(2, "rule_based", 0)]
    assert "the whole run, timed" in str(e)


def test_the_cli_prints_the_estimate(capsys):
    assert main(["validate", str(SMALL), "--estimate", "--strategy", "rule_based"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "vpp run --strategy rule_based:" in out


def test_a_bad_strategy_is_refused_before_anything_is_timed(capsys):
    assert main(["validate", str(SMALL), "--estimate", "--strategy", "nope"]) == 2
    assert "--strategy" in capsys.readouterr().err
