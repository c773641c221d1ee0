"""Demand response: events, customer baselines and settlement (vocabulary).

A demand-response event is a call from the grid operator: shave the VPP's
import (peak shaving, 削峰) or raise it (valley filling, 填谷) over a window,
announced at a notice time, paid per kWh delivered against a *customer
baseline* -- an estimate, from metered history, of the load that would have
been -- inside a settlement band.

The baseline methods are pure functions of a metered load history (a
:class:`pandas.Series` of mean power per step, tz-aware) and the event window:

* :func:`caiso_10in10` -- CAISO's 10-in-10 with the day-of adjustment, capped;
* :func:`top5_of_10` -- Beijing's mean of the 5 highest of the 10 prior working days;
* :func:`last5_working_days` -- Jiangsu's mean of the last 5 working days;
* :func:`pre_event` -- the load of the 15 minutes before the event (fast response).

Days that were themselves event days are skipped, as every rule says, and so are
days of the other kind (a working-day event draws on working days, a weekend or
holiday event on weekends and holidays).  Working days follow China's statutory
calendar (:data:`CN_HOLIDAYS`, :data:`CN_MAKEUP_WORKDAYS`), which a scenario can
extend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "DREvent",
    "SettlementBand",
    "Settlement",
    "BASELINES",
    "BlockTerms",
    "block_terms",
    "CN_HOLIDAYS",
    "CN_MAKEUP_WORKDAYS",
    "WorkCalendar",
    "caiso_10in10",
    "top5_of_10",
    "last5_working_days",
    "pre_event",
    "recent_days_mean",
    "settle",
]

Kind = Literal["peak_shaving", "valley_filling"]


def _days(*spans: tuple[str, str]) -> frozenset[date]:
    out = set()
    for first, last in spans:
        out.update(d.date() for d in pd.date_range(first, last, freq="D"))
    return frozenset(out)


# China's statutory holidays (国务院办公厅 notices: 国办发明电〔2023〕7号 for 2024,
# 国办发明电〔2024〕12号 for 2025) and the weekend days worked in exchange (调休).
CN_HOLIDAYS = _days(
    ("2024-01-01", "2024-01-01"), ("2024-02-10", "2024-02-17"), ("2024-04-04", "2024-04-06"),
    ("2024-05-01", "2024-05-05"), ("2024-06-10", "2024-06-10"), ("2024-09-15", "2024-09-17"),
    ("2024-10-01", "2024-10-07"),
    ("2025-01-01", "2025-01-01"), ("2025-01-28", "2025-02-04"), ("2025-04-04", "2025-04-06"),
    ("2025-05-01", "2025-05-05"), ("2025-05-31", "2025-06-02"), ("2025-10-01", "2025-10-08"),
)
CN_MAKEUP_WORKDAYS = _days(
    ("2024-02-04", "2024-02-04"), ("2024-02-18", "2024-02-18"), ("2024-04-07", "2024-04-07"),
    ("2024-04-28", "2024-04-28"), ("2024-05-11", "2024-05-11"), ("2024-09-14", "2024-09-14"),
    ("2024-09-29", "2024-09-29"), ("2024-10-12", "2024-10-12"),
    ("2025-01-26", "2025-01-26"), ("2025-02-08", "2025-02-08"), ("2025-04-27", "2025-04-27"),
    ("2025-09-28", "2025-09-28"), ("2025-10-11", "2025-10-11"),
)


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days: Monday to Friday, less *holidays*, plus *workdays*."""

    holidays: frozenset[date] = CN_HOLIDAYS
    workdays: frozenset[date] = CN_MAKEUP_WORKDAYS

    def is_working(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


@dataclass(frozen=True)
class SettlementBand:
    """How delivery is paid (every field a scenario parameter).

    Parameters
    ----------
    paid_min_frac : float
        Below this ratio of delivered to bid energy nothing is paid. [-]
    paid_max_frac : float
        Delivery above this ratio of the bid is not paid. [-]
    penalty_floor_frac : float
        Below this ratio the shortfall to it is charged ``penalty_cny_per_kwh``. [-]
    penalty_cny_per_kwh : float
        Price of the shortfall below the floor. [CNY/kWh]
    """

    paid_min_frac: float = 0.5
    paid_max_frac: float = 1.2
    penalty_floor_frac: float = 0.0
    penalty_cny_per_kwh: float = 0.0


@dataclass(frozen=True)
class DREvent:
    """One call, as a strategy sees it once it is announced.

    Parameters
    ----------
    name : str
    kind : {"peak_shaving", "valley_filling"}
    notice_step, start_step, end_step : int
        Announcement, and the window ``[start, end)``, in simulation steps.
    capacity_kw : float
        The requested (or bid) change of the VPP's import, >= 0. [kW]
    price_cny_per_kwh : float
        Compensation per kWh delivered. [CNY/kWh]
    baseline : str
        Settlement baseline method (a key of :data:`BASELINES`).
    band : SettlementBand
    baseline_kw : ndarray, shape (end - start,)
        The baseline as the VPP can compute it at the notice (without a day-of
        adjustment not yet known); what an optimising strategy plans against. [kW]
    """

    name: str
    kind: Kind
    notice_step: int
    start_step: int
    end_step: int
    capacity_kw: float
    price_cny_per_kwh: float
    baseline: str
    band: SettlementBand
    baseline_kw: np.ndarray

    @property
    def sign(self) -> float:
        """+1 for peak shaving (delivery = baseline - import), -1 for valley filling."""
        return 1.0 if self.kind == "peak_shaving" else -1.0


@dataclass(frozen=True)
class BlockTerms:
    """Calls of one kind on a horizon's blocks (see :func:`block_terms`).

    Attributes
    ----------
    share : ndarray, shape (H,)
        Share of each block inside a call's window (0 outside calls). [-]
    baseline_kw : ndarray, shape (H,)
        The call's baseline over the block's steps inside the window (0 outside). [kW]
    cap_kw : ndarray, shape (H,)
        Delivery paid at most: ``paid_max_frac x capacity`` (0 outside). [kW]
    price_cny_per_kwh : ndarray, shape (H,)
        The call's compensation (0 outside). [CNY/kWh]
    """

    share: np.ndarray
    baseline_kw: np.ndarray
    cap_kw: np.ndarray
    price_cny_per_kwh: np.ndarray


def block_terms(events: Iterable[DREvent], kind: Kind, k0: int, starts: np.ndarray,
                steps_per_block: np.ndarray) -> BlockTerms:
    """The calls of *kind* on the blocks of a horizon starting at step *k0*
    (block ``t`` covers steps ``k0 + starts[t]`` onwards, ``steps_per_block[t]``
    of them).  Where two calls share a block, the one covering more of it counts."""
    h = len(starts)
    share, base, cap, price = (np.zeros(h) for _ in range(4))
    for e in (e for e in events if e.kind == kind):
        for t in range(h):
            k = k0 + starts[t] + np.arange(steps_per_block[t])
            inside = (k >= e.start_step) & (k < e.end_step)
            if inside.mean() <= share[t]:
                continue
            share[t] = inside.mean()
            base[t] = float(e.baseline_kw[k[inside] - e.start_step].mean())
            cap[t] = e.band.paid_max_frac * e.capacity_kw
            price[t] = e.price_cny_per_kwh
    return BlockTerms(share, base, cap, price)


# -- customer baselines ----------------------------------------------------------

def _offsets(load_kw: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.TimedeltaIndex:
    """The steps of ``[start, end)`` as offsets from the midnight of *start*'s day."""
    step = pd.Timedelta(load_kw.index.freq or (load_kw.index[1] - load_kw.index[0]))
    n = int(round((end - start) / step))
    return pd.TimedeltaIndex((start - start.normalize()) + step * np.arange(n))


def _on(load_kw: pd.Series, day: pd.Timestamp, offsets: pd.TimedeltaIndex) -> np.ndarray:
    """The load at *offsets* from midnight *day* (NaN where not recorded). [kW]"""
    return load_kw.reindex(day + offsets).to_numpy(dtype=float)


def _prior_days(load_kw: pd.Series, start: pd.Timestamp, n: int, skip: Iterable[date], calendar: WorkCalendar,
                offsets: pd.TimedeltaIndex) -> list[pd.Timestamp]:
    """Midnights of the *n* most recent days before *start*'s day of its kind
    (working or not), not in *skip*, whose record covers *offsets*; newest first."""
    working, skip = calendar.is_working(start.date()), set(skip)
    out, day = [], start.normalize() - pd.Timedelta(days=1)
    earliest = load_kw.index[0].normalize() - pd.Timedelta(days=1) if len(load_kw) else day
    while len(out) < n and day >= earliest:
        if calendar.is_working(day.date()) == working and day.date() not in skip \
                and np.isfinite(_on(load_kw, day, offsets)).all():
            out.append(day)
        day -= pd.Timedelta(days=1)
    if len(out) < n:
        raise ValueError(f"the load history holds {len(out)} eligible days before {start.date()}; "
                         f"the baseline needs {n}")
    return out


def recent_days_mean(load_kw: pd.Series, start: pd.Timestamp, end: pd.Timestamp, n: int,
                     event_days: Iterable[date] = (), calendar: WorkCalendar = WorkCalendar()) -> np.ndarray | None:
    """The mean per interval of up to *n* most recent prior days of the event
    day's kind that the record covers (fewer if fewer are there), or ``None``
    if none is: a planning estimate while the history is short. [kW]"""
    window = _offsets(load_kw, start, end)
    for m in range(n, 0, -1):
        try:
            days = _prior_days(load_kw, start, m, event_days, calendar, window)
        except ValueError:
            continue
        return np.mean([_on(load_kw, d, window) for d in days], axis=0)
    return None


def caiso_10in10(load_kw: pd.Series, start: pd.Timestamp, end: pd.Timestamp, event_days: Iterable[date] = (),
                 calendar: WorkCalendar = WorkCalendar(), adjust: bool = True, cap_frac: float = 0.2) -> np.ndarray:
    """CAISO 10-in-10 with the day-of adjustment (CAISO, *Business Practice
    Manual for Demand Response*, customer load baseline; Bode & Ciccone, CAISO
    Baseline Accuracy Assessment, 2017).

    The mean, per interval of the window, of the 10 most recent prior days of
    the event day's kind that were not event days; then multiplied by the
    ratio of the event day's load to those days' mean over the three hours that
    start four hours before the event, the ratio capped to ``1 +- cap_frac``
    (CAISO's 20 % cap).  ``adjust=False`` skips the adjustment (what is known
    at a day-ahead notice).  Returns the baseline per step of the window. [kW]
    """
    window = _offsets(load_kw, start, end)
    before = _offsets(load_kw, start - pd.Timedelta(hours=4), start - pd.Timedelta(hours=1))
    before = before + (start - pd.Timedelta(hours=4)).normalize() - start.normalize()
    days = _prior_days(load_kw, start, 10, event_days, calendar, window.append(before) if adjust else window)
    base = np.mean([_on(load_kw, d, window) for d in days], axis=0)
    if not adjust:
        return base
    actual = _on(load_kw, start.normalize(), before)
    if not np.isfinite(actual).all():
        raise ValueError(f"the day-of adjustment needs the load of the 3 hours from {start - pd.Timedelta(hours=4)}")
    ref = float(np.mean([_on(load_kw, d, before) for d in days]))
    ratio = float(actual.mean()) / ref if ref != 0 else 1.0
    return base * float(np.clip(ratio, 1.0 - cap_frac, 1.0 + cap_frac))


def top5_of_10(load_kw: pd.Series, start: pd.Timestamp, end: pd.Timestamp, event_days: Iterable[date] = (),
               calendar: WorkCalendar = WorkCalendar()) -> np.ndarray:
    """Beijing's baseline: of the 10 most recent prior days of the event day's
    kind that were not event days, the 5 with the highest mean load over the
    window; their mean per interval (DOMAIN.md: Beijing DR rules). [kW]"""
    window = _offsets(load_kw, start, end)
    days = [_on(load_kw, d, window) for d in _prior_days(load_kw, start, 10, event_days, calendar, window)]
    top = sorted(days, key=lambda v: float(v.mean()), reverse=True)[:5]
    return np.mean(top, axis=0)


def last5_working_days(load_kw: pd.Series, start: pd.Timestamp, end: pd.Timestamp, event_days: Iterable[date] = (),
                       calendar: WorkCalendar = WorkCalendar()) -> np.ndarray:
    """Jiangsu's baseline: the mean per interval of the last 5 prior days of the
    event day's kind that were not event days (DOMAIN.md: Jiangsu DR rules). [kW]"""
    window = _offsets(load_kw, start, end)
    return np.mean([_on(load_kw, d, window) for d in _prior_days(load_kw, start, 5, event_days, calendar, window)],
                   axis=0)


def pre_event(load_kw: pd.Series, start: pd.Timestamp, end: pd.Timestamp, event_days: Iterable[date] = (),
              calendar: WorkCalendar = WorkCalendar(), minutes: int = 15) -> np.ndarray:
    """Fast response: the mean load of the *minutes* before the event, held over
    the window (Jiangsu real-time DR: the load 15 minutes before control). [kW]"""
    values = load_kw[(load_kw.index >= start - pd.Timedelta(minutes=minutes)) & (load_kw.index < start)]
    if values.size == 0 or not np.isfinite(values.to_numpy(dtype=float)).all():
        raise ValueError(f"the pre-event baseline needs the load of the {minutes} minutes before {start}")
    return np.full(len(_offsets(load_kw, start, end)), float(values.mean()))


BASELINES = {"caiso_10in10": caiso_10in10, "top5_of_10": top5_of_10,
             "last5_working_days": last5_working_days, "pre_event": pre_event}


# -- settlement ---------------------------------------------------------------------

@dataclass(frozen=True)
class Settlement:
    """One event's settlement: delivered and bid energy [kWh], their ratio [-],
    the payment and the penalty [CNY]."""

    delivered_kwh: float
    bid_kwh: float
    ratio: float
    payment_cny: float
    penalty_cny: float


def settle(kind: Kind, baseline_kw: np.ndarray, metered_kw: np.ndarray, dt_h: float, capacity_kw: float,
           price_cny_per_kwh: float, band: SettlementBand) -> Settlement:
    """Settle one event: delivered energy = (baseline - metered) x dt summed over
    the window for peak shaving (metered - baseline for valley filling); the
    ratio to the bid energy (capacity x window); paid at the price for delivery
    up to ``paid_max_frac`` of the bid if the ratio reaches ``paid_min_frac``,
    nothing below; below ``penalty_floor_frac`` the shortfall to the floor is
    charged the penalty price."""
    sign = 1.0 if kind == "peak_shaving" else -1.0
    delivered = float(sign * (np.asarray(baseline_kw) - np.asarray(metered_kw)).sum() * dt_h)
    bid = float(capacity_kw * len(baseline_kw) * dt_h)
    ratio = delivered / bid if bid > 0 else float("nan")
    paid = min(delivered, band.paid_max_frac * bid) if bid > 0 and ratio >= band.paid_min_frac else 0.0
    short = max(band.penalty_floor_frac * bid - delivered, 0.0)
    return Settlement(delivered, bid, ratio, price_cny_per_kwh * paid, band.penalty_cny_per_kwh * short)
