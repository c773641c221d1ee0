"""The grid operator's demand-response calls during a run (orchestration).

:class:`DRCalls` turns a scenario's ``[[dr.events]]`` into :class:`vpp.dr.DREvent`
objects at their notice (the engine's SimPy process announces them), with the
baseline the VPP can compute at that moment, and settles every event after the
run against each baseline method and the true counterfactual (:func:`settle_calls`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from pydantic import ValidationError

from vpp.dr import (
    BASELINES,
    CN_HOLIDAYS,
    CN_MAKEUP_WORKDAYS,
    DREvent,
    SettlementBand,
    WorkCalendar,
    recent_days_mean,
    settle,
)
from vpp.errors import FieldError
from vpp.exogenous import Exogenous
from vpp.rng import component_rng
from vpp.scenario import DREventConfig, Scenario
from vpp.timeline import Timeline

__all__ = ["DRCalls", "settle_calls", "RESPONSE_COSTS", "generate_calls", "read_calls_csv", "metered_series",
           "BASELINE_DAYS"]

SHIFT_SPAN_H = 3.0     # hours before and after a call in which moved load is counted [h]
BASELINE_DAYS = {"caiso_10in10": 10, "top5_of_10": 10, "last5_working_days": 5}   # prior days each method needs


def metered_series(timeline: Timeline, import_kw: np.ndarray, history_kw: pd.Series | None) -> pd.Series:
    """The VPP's metered net import: the history before the run, then the run's
    first ``len(import_kw)`` steps. [kW]"""
    run = pd.Series(np.asarray(import_kw, dtype=float), index=timeline.index[: len(import_kw)])
    out = run if history_kw is None or history_kw.empty else pd.concat([history_kw[history_kw.index < run.index[0]]
                                                                       if len(run) else history_kw, run])
    out.index.freq = None
    return out


class DRCalls:
    """A run's demand-response calls.

    Parameters
    ----------
    scenario : Scenario
    history_kw : Series, optional
        Metered VPP net import before the run (the baselines' prior days). [kW]
    exogenous : Exogenous, optional
        The run's weather, for ``dr.generator`` (no generated calls without it).
    """

    def __init__(self, scenario: Scenario, history_kw: pd.Series | None = None, exogenous: Exogenous | None = None):
        self.scenario, self.history_kw = scenario, history_kw
        self.timeline = scenario.timeline()
        dr = scenario.dr
        self.calendar = WorkCalendar(CN_HOLIDAYS | frozenset(dr.holidays), CN_MAKEUP_WORKDAYS | frozenset(dr.workdays))
        self.configs = list(dr.events)
        if dr.events_csv is not None:
            self.configs += read_calls_csv(scenario)
        if dr.generator is not None and exogenous is not None:
            self.configs += generate_calls(scenario, exogenous, self.calendar)
        t = scenario.time
        self.windows = [(self._step(t._ts(e.start)), self._step(t._ts(e.end))) for e in self.configs]
        self.notices = [max(0, int(np.ceil(self._step_f(scenario.dr_notice_ts(e))))) for e in self.configs]
        self.event_days = sorted({t._ts(e.start).date() for e in self.configs})
        self.announced: list[DREvent] = []
        self.bids: dict[str, float] = {}          # capacity offered per call, where a strategy bid [kW]

    def check_history(self) -> None:
        """Raise ``FieldError`` at the first event whose baseline method needs more
        prior days (or minutes) than the history will hold."""
        sc, t = self.scenario, self.scenario.time
        simulated = sc.dr.history in ("baseline", "strategy")
        first = t.start_ts - (pd.Timedelta(days=sc.dr.history_days) if simulated else pd.Timedelta(0))
        for i, cfg in enumerate(self.configs):
            start = t._ts(cfg.start)
            if self.notices[i] == 0 and sc.dr.history == "run":
                raise FieldError(("dr", "events", i, "notice"), "announced when the run starts, before anything is "
                                 "metered: no baseline yet (set dr.history = \"baseline\" or a later notice)")
            if cfg.baseline == "pre_event":
                if start - pd.Timedelta(minutes=15) < first:
                    raise FieldError(("dr", "events", i, "start"), f"the pre_event baseline needs the 15 minutes "
                                     f"before {start}, before the history starts ({first})")
                continue
            need = BASELINE_DAYS[cfg.baseline]
            days = pd.date_range(first.normalize() + (pd.Timedelta(days=1) if first != first.normalize()
                                                      else pd.Timedelta(0)), start.normalize(), freq="D",
                                 inclusive="left")
            kind = self.calendar.is_working(start.date())
            have = sum(1 for d in days if self.calendar.is_working(d.date()) == kind
                       and d.date() not in self.event_days)
            if have < need:
                raise FieldError(("dr", "events", i, "baseline"),
                                 f"{cfg.baseline} needs {need} prior {'working' if kind else 'non-working'} days "
                                 f"without calls before {start.date()}; the history holds {have} (dr.history = "
                                 f"{sc.dr.history!r}, history_days = {sc.dr.history_days})")

    def _step_f(self, ts: pd.Timestamp) -> float:
        return (ts - self.timeline.start).total_seconds() / self.timeline.step_s

    def _step(self, ts: pd.Timestamp) -> int:
        return int(round(self._step_f(ts)))

    def window_times(self, i: int) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Start and end time of event *i*'s window."""
        start, end = self.windows[i]
        t0 = self.timeline.time_of(start)
        return t0, t0 + (end - start) * pd.Timedelta(seconds=self.timeline.step_s)

    def schedule(self) -> list[tuple[int, int]]:
        """(notice step, event index) in the order of announcement."""
        return sorted((k, i) for i, k in enumerate(self.notices))

    def announce(self, i: int, k: int, import_so_far_kw: np.ndarray) -> DREvent:
        """Event *i* at its notice step *k*, with the baseline computable from the
        metered import up to *k* (:meth:`planning_baseline`)."""
        cfg = self.configs[i]
        start, end = self.windows[i]
        load = metered_series(self.timeline, import_so_far_kw[:k], self.history_kw)
        event = DREvent(name=cfg.name, kind=cfg.kind, notice_step=k, start_step=start, end_step=end,
                        capacity_kw=cfg.capacity_kw, price_cny_per_kwh=cfg.price_cny_per_kwh, baseline=cfg.baseline,
                        band=_band(cfg), baseline_kw=self.planning_baseline(i, load))
        self.announced.append(event)
        return event

    def planning_baseline(self, i: int, load: pd.Series) -> np.ndarray:
        """The event's baseline from the load metered so far: its own method where
        the data it needs is in; else the mean of the eligible prior days metered
        so far (up to the method's number; without CAISO's day-of adjustment), or
        failing those the last metered step held. [kW]"""
        cfg, (start, end), (t0, t1) = self.configs[i], self.windows[i], self.window_times(i)
        own = _estimate(BASELINES[cfg.baseline], load, t0, t1, self)
        if own is not None:
            return own
        if cfg.baseline in BASELINE_DAYS:
            days = recent_days_mean(load, t0, t1, BASELINE_DAYS[cfg.baseline], self.event_days, self.calendar)
            if days is not None:
                return days
        return np.full(end - start, float(load.iloc[-1]))

    def set_bid(self, event: DREvent, bid_kw: float) -> DREvent:
        """The announced *event* with the capacity a strategy offered (at most the request)."""
        bid = float(np.clip(bid_kw, 0.0, event.capacity_kw))
        offered = dataclasses.replace(event, capacity_kw=bid)
        self.announced[self.announced.index(event)] = offered
        self.bids[event.name] = bid
        return offered

    def active(self, k: int) -> tuple[DREvent, ...]:
        """Events announced by step *k* that have not ended."""
        return tuple(e for e in self.announced if e.end_step > k)


def read_calls_csv(scenario: Scenario) -> list[DREventConfig]:
    """The calls of ``dr.events_csv`` (columns: the fields of ``[[dr.events]]``;
    empty cells take the defaults), checked with the listed ones; a mistake is
    a ``FieldError`` at ``dr.events_csv`` naming the file, row and column."""
    path = scenario.resolve_path(scenario.dr.events_csv)
    where = ("dr", "events_csv")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise FieldError(where, f"{path}: cannot read ({type(e).__name__}: {e})") from None
    out = []
    for r, row in enumerate(table.to_dict("records"), start=2):
        try:
            out.append(DREventConfig.model_validate({k.strip(): v.strip() for k, v in row.items() if v.strip()}))
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            col = ".".join(str(x) for x in err["loc"]) or "row"
            raise FieldError(where, f"{path} row {r}, {col}: {err['msg']}") from None
    listed = list(scenario.dr.events)
    try:
        scenario.check_dr_calls(listed + out)
    except FieldError as e:
        i = e.loc[2] - len(listed) if len(e.loc) > 2 and isinstance(e.loc[2], int) else -1
        if i < 0:
            raise
        raise FieldError(where, f"{path} row {i + 2}, {e.loc[3]}: {e}") from None
    return out


def generate_calls(scenario: Scenario, exogenous: Exogenous, calendar: WorkCalendar) -> list[DREventConfig]:
    """Calls drawn by ``dr.generator`` from the run's weather (its docstring
    states the rules); one uniform draw per day of the run, in order, from the
    scenario's ``dr/generator`` stream, so a call depends only on its own day."""
    g, t = scenario.dr.generator, scenario.time
    rng = component_rng(scenario.seed, "dr/generator")
    n = scenario.timeline().n_steps
    idx = exogenous.index[:n]
    temp = pd.Series(np.asarray(exogenous.temp_air_c[:n], dtype=float), index=idx)
    ghi = pd.Series(np.asarray(exogenous.ghi_w_m2[:n], dtype=float), index=idx)
    listed = {t._ts(e.start).date() for e in scenario.dr.events}
    out = []
    for day in idx.normalize().unique():
        u = rng.random()
        today = idx.normalize() == day
        if day.date() in listed:
            continue
        if calendar.is_working(day.date()):
            kind, hour = "peak_shaving", g.peak_start_hour
            hit = temp[today].max() >= g.hot_day_c and u < g.peak_call_prob
        else:
            kind, hour = "valley_filling", g.valley_start_hour
            midday = ghi[today & (idx.hour >= 11) & (idx.hour < 14)]
            hit = len(midday) > 0 and midday.mean() >= g.sunny_ghi_w_m2 and u < g.valley_call_prob
        start = day + pd.Timedelta(hours=hour)
        end = start + pd.Timedelta(hours=g.window_h)
        if hit and start >= t.start_ts and end <= t.end_ts:
            out.append(DREventConfig(
                name=f"{kind}_{day.date()}", kind=kind, start=start.to_pydatetime(), end=end.to_pydatetime(),
                notice=(day - pd.Timedelta(days=1) + pd.Timedelta(hours=g.notice_hour)).to_pydatetime(),
                capacity_kw=g.capacity_kw, price_cny_per_kwh=g.price_cny_per_kwh, baseline=g.baseline))
    return out


def _band(cfg: DREventConfig) -> SettlementBand:
    return SettlementBand(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(SettlementBand)})


def settle_calls(calls: DRCalls, run: pd.DataFrame, counterfactual: pd.DataFrame | None = None,
                 bids: dict[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's calls settled: ``(events, baselines)``, each method's baseline
    computed once per call.  ``baselines`` holds every method's baseline per step
    of every call's window (long form: event, method, time, baseline_kw [kW]),
    for the report; ``events`` one row per call: the window, the settlement against its own baseline
    method, every method's baseline energy and its error against the true
    counterfactual (the same draws without the calls: the baseline strategy's
    run, or the strategy's own run without them), the true delivery, the load
    moved around the window, and the local green power absorbed.

    *run* and *counterfactual* are per-step frames (one row per step of the run)
    with ``net_import_kw`` and, where known, ``green_local_kw`` [kW],
    ``comfort_violation_kh`` [K h] and ``unserved_kwh`` [kWh] (see
    :data:`RESPONSE_COSTS`).  *bids*: the capacity the strategy offered per call
    (else the request), which the delivery is settled against.
    ``green_absorbed_kwh`` is how much more local green power the run used in
    the window than the counterfactual.  The cost of responding, counted over
    the window and the :data:`SHIFT_SPAN_H` hours on either side of it (where
    moved load lands), run minus counterfactual: ``comfort_cost_kh`` (occupied
    hours outside the comfort band) and ``service_cost_kwh`` (EV and batch energy
    not served at departures and deadlines in that span).

    Energies over the window [kWh]; ``true_delivered_kwh`` is the counterfactual
    minus metered import (peak shaving; the reverse for valley filling);
    ``settled_minus_true_kwh`` is how much of the settled delivery is baseline
    error; ``pre_event_shift_kwh`` is the import in the :data:`SHIFT_SPAN_H`
    hours before the window above the counterfactual (load moved ahead of the
    event), ``rebound_kwh`` the import in as many hours after it above the
    counterfactual for peak shaving (below it for valley filling): load the
    physics (buildings, batches, cars, storage) moved behind the event."""
    tl, dt = calls.timeline, calls.timeline.dt_h
    import_kw = run["net_import_kw"].to_numpy(dtype=float)
    load = metered_series(tl, import_kw, calls.history_kw)
    rows, steps = [], []
    for i, cfg in enumerate(calls.configs):
        start, end = calls.windows[i]
        t0, t1 = calls.window_times(i)
        estimates = {name: _estimate(method, load, t0, t1, calls) for name, method in BASELINES.items()}
        steps += [{"event": cfg.name, "method": name, "time": t, "baseline_kw": float(v)}
                  for name, b in estimates.items() if b is not None
                  for t, v in zip(tl.index[start:end], b, strict=True)]
        metered = np.asarray(import_kw[start:end], dtype=float)
        sign = 1.0 if cfg.kind == "peak_shaving" else -1.0
        capacity = (bids or {}).get(cfg.name, cfg.capacity_kw)
        row = {"event": cfg.name, "kind": cfg.kind, "start": t0, "end": t1,
               "notice": tl.time_of(calls.notices[i]) if calls.notices[i] < tl.n_steps else t0,
               "requested_kw": cfg.capacity_kw, "capacity_kw": capacity,
               "price_cny_per_kwh": cfg.price_cny_per_kwh, "baseline": cfg.baseline,
               "paid_min_frac": cfg.paid_min_frac, "paid_max_frac": cfg.paid_max_frac,
               "history": calls.scenario.dr.history, "metered_kwh": float(metered.sum() * dt)}
        for name, b in estimates.items():
            b = np.full(end - start, np.nan) if b is None else b
            row[f"baseline_{name}_kwh"] = float(b.sum() * dt)
            if name == cfg.baseline:
                s = settle(cfg.kind, b, metered, dt, capacity, cfg.price_cny_per_kwh, _band(cfg))
                row.update(delivered_kwh=s.delivered_kwh, bid_kwh=s.bid_kwh, delivered_ratio=s.ratio,
                           payment_cny=s.payment_cny, penalty_cny=s.penalty_cny)
        if counterfactual is not None:
            row.update(_against_counterfactual(row, run, counterfactual, start, end, sign, dt))
        rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(steps, columns=["event", "method", "time", "baseline_kw"])


RESPONSE_COSTS = {"comfort_violation_kh": "comfort_cost_kh", "unserved_kwh": "service_cost_kwh"}
"""Per-step run quantities whose excess over the counterfactual around a call is its cost of responding."""


def _against_counterfactual(row: dict, run: pd.DataFrame, cf: pd.DataFrame, start: int, end: int,
                            sign: float, dt: float) -> dict[str, float]:
    """One call's columns measured against the true counterfactual (see :func:`settle_calls`)."""
    imp, true = run["net_import_kw"].to_numpy(dtype=float), cf["net_import_kw"].to_numpy(dtype=float)
    span = int(round(SHIFT_SPAN_H / dt))
    first = max(start - span, 0)
    before, after, around = slice(first, start), slice(end, end + span), slice(first, end + span)
    out = {"counterfactual_kwh": float(true[start:end].sum() * dt)}
    out["true_delivered_kwh"] = float(sign * (true[start:end] - imp[start:end]).sum() * dt)
    out["settled_minus_true_kwh"] = row["delivered_kwh"] - out["true_delivered_kwh"]
    for name in BASELINES:
        out[f"baseline_{name}_error_kwh"] = row[f"baseline_{name}_kwh"] - out["counterfactual_kwh"]
    extra = imp - true
    out["pre_event_shift_kwh"] = float(extra[before].sum() * dt)
    out["rebound_kwh"] = float(sign * extra[after].sum() * dt)
    if "green_local_kw" in run and "green_local_kw" in cf:
        more = run["green_local_kw"].to_numpy()[start:end] - cf["green_local_kw"].to_numpy()[start:end]
        out["green_absorbed_kwh"] = float(more.sum() * dt)
    for quantity, column in RESPONSE_COSTS.items():
        if quantity in run and quantity in cf:
            out[column] = float(run[quantity].to_numpy()[around].sum() - cf[quantity].to_numpy()[around].sum())
    return out


def _estimate(method, load: pd.Series, t0: pd.Timestamp, t1: pd.Timestamp, calls: DRCalls) -> np.ndarray | None:
    """A baseline method's estimate over ``[t0, t1)``, or ``None`` where the
    history lacks what it needs. [kW]"""
    try:
        return method(load, t0, t1, calls.event_days, calls.calendar)
    except ValueError:
        return None
