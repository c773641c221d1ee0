"""The KPI table of a run against its baseline: values, deltas, and a judgement per row
(figure conventions: :mod:`vpp.dashboards.figures`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vpp.dashboards._style import (
    _ABS_TOL,
    _BAD_BG,
    _FRACTIONS,
    _GOOD_BG,
    _MW,
    _NEUTRAL_BG,
    _TEMPLATE,
    HEADLINE_KPIS,
    PowerUnit,
    _is_noise,
    _near_zero,
    _text,
    kpi_label,
    power_unit,
)
from vpp.kpi import KPI_META, compute_kpis, relative_kpis
from vpp.results import Results

__all__ = ["kpi_table", "kpi_table_figure"]


# -- 5. KPI table --------------------------------------------------------------------------
def _kpis(results: Results) -> pd.DataFrame:
    if results.kpis is not None:
        return results.kpis
    own = compute_kpis(results)
    base = compute_kpis(results.baseline) if results.baseline is not None else own * np.nan
    return relative_kpis(own, base)


def _kpi_order(names) -> list[str]:
    names = list(names)
    head = [k for k in HEADLINE_KPIS if k in names]
    return head + [k for k in names if k not in head]


def _display_unit(name: str, unit: str, scale: PowerUnit) -> tuple[float, str]:
    """Factor and unit a KPI is shown in."""
    if name in _FRACTIONS:
        return 100.0, "%"
    if unit == "kg":                                   # CO2 in tonnes everywhere
        return 1e-3, "t"
    if scale is _MW and unit in ("kW", "kWh", "kW/h") and not name.startswith("ev_"):  # EV energy stays kWh
        return 1e-3, unit.replace("kW", "MW")
    return 1.0, unit


def _fmt(x: float, signed: bool = False) -> str:
    if x is None or not np.isfinite(x):
        return "\u2013"
    sign = "+" if signed else ""
    a = abs(x)
    if a < _ABS_TOL:
        return "0"                     # below any figure a KPI means (solver noise)
    if a >= 100:
        return f"{x:{sign},.0f}"
    if a >= 1:
        return f"{x:{sign},.2f}"
    if a == 0:
        return f"{0.0:{sign}.0f}"
    return f"{x:{sign}.3g}"


def _fmt_pct(x: float, signed: bool = False) -> str:
    """A value already in % (or percentage points), one decimal."""
    if x is None or not np.isfinite(x):
        return "\u2013"
    return f"{x:+.1f}" if signed else f"{x:.1f}"


_FEATURE_PREFIXES = ("market_", "dr_", "comms_", "forecast_", "outage_")


def _nothing(row) -> bool:
    """Zero or missing in the run and its baseline."""
    values = [float(row.get(c, np.nan)) for c in ("value", "baseline")]
    return all((not np.isfinite(v)) or abs(v) < _ABS_TOL for v in values)


def _judgement(better: str, delta: float, value: float, base: float, unit: str = "") -> int:
    """+1 better than the baseline, -1 worse, 0 no change (within noise) or no direction."""
    if not (np.isfinite(delta) and np.isfinite(value) and np.isfinite(base)):
        return 0
    if _is_noise(delta, value, base, unit):
        return 0
    if better == "higher":
        return 1 if delta > 0 else -1
    if better == "lower":
        return 1 if delta < 0 else -1
    return 0


def kpi_table(results: Results, unit: PowerUnit | None = None) -> pd.DataFrame:
    """The run's KPIs formatted for reading, headline KPIs first.

    Fractions are shown in %, their deltas in percentage points; kW and
    kWh KPIs follow the run's display unit (:func:`power_unit`).

    Returns
    -------
    DataFrame
        Index: KPI name.  Columns (all text except ``judgement``): ``label``,
        ``value``, ``baseline``, ``delta``, ``delta_pct``, ``unit``,
        ``description``, ``judgement`` (+1 better than the baseline, -1
        worse, 0 unchanged or no preferred direction).
    """
    kpis = _kpis(results)
    scale = unit or power_unit(results)
    rows = {}
    for name in _kpi_order(kpis.index):
        row = kpis.loc[name]
        if name.startswith(_FEATURE_PREFIXES) and _nothing(row):
            continue                                   # a market or DR figure of a run without them
        unit_raw = str(row.get("unit", KPI_META.get(name, ("-",))[0]))
        factor, shown = _display_unit(name, unit_raw, scale)
        value, base, delta = (float(row.get(c, np.nan)) for c in ("value", "baseline", "delta"))
        better = str(row.get("better", KPI_META.get(name, ("", "none"))[1]))
        description = str(row.get("description", KPI_META.get(name, ("", "", ""))[2]))
        fmt = _fmt_pct if name in _FRACTIONS else _fmt
        pct = float(row.get("delta_pct", np.nan))
        if np.isfinite(delta) and _is_noise(delta, value, base, unit_raw):
            delta, pct = 0.0, 0.0                                  # the same, up to solver noise
        if _near_zero(base, unit_raw, value) and delta != 0.0:
            pct = np.nan                                           # no percentage of (almost) nothing
        rows[name] = {
            "label": kpi_label(name),
            "value": fmt(value * factor), "baseline": fmt(base * factor),
            "delta": fmt(delta * factor, signed=delta != 0.0) + (" pt" if shown == "%" and np.isfinite(delta) else ""),
            "delta_pct": f"{pct:+.1f} %" if np.isfinite(pct) and pct != 0.0 else ("0 %" if pct == 0.0 else "\u2013"),
            "unit": shown, "description": description,
            "judgement": _judgement(better, delta, value, base, unit_raw),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def kpi_table_figure(results: Results) -> go.Figure:
    """The KPI table (value, baseline, delta, delta %, unit) as a plotly Table.

    Headline KPIs come first; a delta cell is green when the run beats the
    baseline and orange when it is worse (by the KPI's ``better`` direction).

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Table`` trace named ``"KPIs"``.
    """
    t = kpi_table(results)
    fill = [{1: _GOOD_BG, -1: _BAD_BG}.get(int(j), _NEUTRAL_BG) for j in t["judgement"]]
    white = [_NEUTRAL_BG] * len(t)
    header = ["KPI", "value", "baseline", "delta", "delta %", "unit"]
    cells = [[_text(s) for s in t.index], t["value"].tolist(), t["baseline"].tolist(), t["delta"].tolist(),
             t["delta_pct"].tolist(), t["unit"].tolist()]
    fig = go.Figure(go.Table(
        name="KPIs", columnwidth=[2.6, 1.2, 1.2, 1.2, 1.0, 0.7],
        header=dict(values=[f"<b>{h}</b>" for h in header], fill_color="#EEEEEE", align="left"),
        cells=dict(values=cells, align=["left", "right", "right", "right", "right", "left"],
                   fill_color=[white, white, white, fill, fill, white], height=24)))
    title = (f"KPIs of {_text(results.strategy)} against the baseline"
             "<br><sub>green: better than the baseline, orange: worse; fractions in %, their deltas "
             "in percentage points</sub>")
    fig.update_layout(template=_TEMPLATE, title=dict(text=title), height=140 + 25 * len(t),
                      margin=dict(l=20, r=20, t=80, b=10))
    return fig
