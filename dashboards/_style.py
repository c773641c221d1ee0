"""What the dashboards' figures share: KPI words, display units, colours, the
plotly template and trace helpers (conventions: :mod:`vpp.dashboards.figures`)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# re-exported for the figures: the KPIs shown first, and the noise rule the notebook summaries share
from vpp.kpi import HEADLINE_KPIS
from vpp.kpi import NOISE_ABS as _ABS_TOL  # noqa: F401
from vpp.kpi import is_noise as _is_noise  # noqa: F401
from vpp.kpi import near_zero as _near_zero  # noqa: F401
from vpp.results import Results

__all__ = ["HEADLINE_KPIS", "KPI_LABELS", "kpi_label", "MW_THRESHOLD_KW", "PowerUnit", "power_unit"]


#: Words for KPIs in tables and headers (others: the name without underscores).
KPI_LABELS = {
    "green_local_consumption_rate": "green power used locally",
    "curtailment_rate": "green power curtailed",
    "self_sufficiency": "self-sufficiency",
    "total_cost_cny": "total cost",
    "co2_kg": "CO\u2082 of imports",
    "peak_import_kw": "peak import",
    "ev_energy_not_served_kwh": "EV energy not served",
    "comfort_violation_kh": "comfort violation",
}

_UNIT_SUFFIXES = ("_kw_per_h", "_kwh", "_kw", "_cny", "_kg", "_kh", "_s", "_frac")


def kpi_label(name: str) -> str:
    """Words for a KPI: its label, or its name without the unit suffix."""
    if name in KPI_LABELS:
        return KPI_LABELS[name]
    for suffix in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ")


#: From this largest power [kW] on, a run is shown in MW (and MWh).
MW_THRESHOLD_KW = 10_000.0

# KPIs with unit "-" that are fractions (shown in %; deltas in percentage points).
_FRACTIONS = frozenset({
    "green_local_consumption_rate", "self_sufficiency", "curtailment_rate", "peak_valley_rate",
    "load_factor", "ev_departures_met_frac", "ev_turned_away_frac", "jobs_on_time_frac",
    "optimality_gap_frac", "flexibility_captured_frac",
})
# -- palette ------------------------------------------------------------------
_OKABE_ITO = {
    "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7", "black": "#000000",
}
# disjoint families, so no two fleets of different kinds share a colour
_SOLAR = ("#E69F00", "#F0E442", "#DDCC77")
_WIND = ("#0072B2", "#56B4E9", "#88CCEE")
_OTHER_SOURCE = ("#44AA99", "#117733")
_LOADS = ("#882255", "#661100", "#332288", "#999933", "#CC6677", "#5D3A9B", "#8C510A", "#1B7837")
_STORAGE = ("#CC79A7", "#AA4499", "#EE99AA")
_IMPORT, _EXPORT = "#4D4D4D", "#AAAAAA"
_LOCAL, _EXPORTED, _CURTAILED = _OKABE_ITO["bluish_green"], _OKABE_ITO["sky_blue"], _OKABE_ITO["vermillion"]
_STRATEGIES = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_BASELINE_COLOR = "#7F7F7F"
_GOOD_BG, _BAD_BG, _NEUTRAL_BG = "#D9F0E3", "#F9DCCB", "white"

_TEMPLATE = go.layout.Template(layout=dict(
    font=dict(family="Helvetica, Arial, sans-serif", size=13, color="#222222"),
    title=dict(x=0.01, xanchor="left", font=dict(size=16)),
    paper_bgcolor="white", plot_bgcolor="white",
    xaxis=dict(showgrid=True, gridcolor="#E6E6E6", linecolor="#888888", ticks="outside", zeroline=False,
               automargin=True, title=dict(standoff=12)),
    yaxis=dict(showgrid=True, gridcolor="#E6E6E6", linecolor="#888888", ticks="outside",
               zeroline=True, zerolinecolor="#888888"),
    hoverlabel=dict(namelength=-1),
    margin=dict(l=80, r=40, t=90, b=50),
    colorway=list(_STRATEGIES),
))


# -- units and time -------------------------------------------------------------
@dataclass(frozen=True)
class PowerUnit:
    """Display unit of a run: ``value_shown = value_kw * factor``."""

    factor: float
    power: str
    energy: str


_KW = PowerUnit(1.0, "kW", "kWh")
_MW = PowerUnit(1e-3, "MW", "MWh")


def power_unit(results: Results) -> PowerUnit:
    """kW, or MW when the run's largest power reaches :data:`MW_THRESHOLD_KW`.

    The largest power is the maximum absolute fleet power, available power
    or node exchange [kW] over the run and its baseline (when attached), so
    that every figure and table of one report uses the same unit.
    """
    largest = 0.0
    for r in (results, results.baseline):
        if r is None:
            continue
        fleets = r.fleets.loc[:, _power_columns(r.fleets)]
        for v in (fleets.to_numpy(dtype=float, na_value=np.nan), r.nodes.to_numpy(dtype=float, na_value=np.nan)):
            v = np.abs(v[np.isfinite(v)])
            largest = max(largest, float(v.max()) if v.size else 0.0)
    return _MW if largest >= MW_THRESHOLD_KW else _KW


def _power_columns(frame: pd.DataFrame) -> np.ndarray:
    quantity = frame.columns.get_level_values("quantity")
    return np.asarray([q in ("p_kw", "p_available_kw") for q in quantity], dtype=bool)


def _state_x(results: Results) -> pd.DatetimeIndex:
    """Instants of recorded states: the end of each step [tz-aware]."""
    return results.index + pd.Timedelta(hours=results.dt_h)


def _tz_label(index: pd.DatetimeIndex) -> str:
    return f"time ({index.tz})" if index.tz is not None else "time"


def _step_x(index: pd.DatetimeIndex, dt_h: float) -> pd.DatetimeIndex:
    """Index plus the end of the last interval (to draw the last step)."""
    if len(index) == 0 or dt_h <= 0:
        return index
    return index.append(pd.DatetimeIndex([index[-1] + pd.Timedelta(hours=dt_h)]))


def _step_y(values, closed: bool) -> np.ndarray:
    y = np.asarray(values, dtype=float)
    return np.append(y, y[-1]) if closed and y.size else y


class _Axis:
    """x values and y scaling of one run, shared by the traces of a figure."""

    def __init__(self, results: Results, unit: PowerUnit | None = None):
        self.unit = unit or power_unit(results)
        self.index = results.index
        self.x = _step_x(self.index, results.dt_h)
        self.closed = len(self.x) > len(self.index)

    def y(self, kw) -> np.ndarray:
        """Values [kW] in the display unit, closed at the end of the period."""
        return _step_y(np.asarray(kw, dtype=float) * self.unit.factor, self.closed)


def _text(s) -> str:
    """Text for plotly titles and legends (plotly renders a subset of HTML)."""
    return html.escape(str(s), quote=False)


# -- trace helpers ------------------------------------------------------------------
def _area(ax: _Axis, kw, name: str, color: str, group: str, **kw_args) -> go.Scatter:
    return go.Scatter(
        x=ax.x, y=ax.y(kw), name=name, mode="lines", stackgroup=group, legendgroup=group,
        line=dict(width=0.5, color=color, shape="hv"), fillcolor=color,
        hovertemplate=f"%{{y:,.2f}} {ax.unit.power}", **kw_args)


def _line(ax: _Axis, kw, name: str, color: str, dash: str = "solid", width: float = 1.8,
          **kw_args) -> go.Scatter:
    return go.Scatter(
        x=ax.x, y=ax.y(kw), name=name, mode="lines",
        line=dict(color=color, dash=dash, width=width, shape="hv"),
        hovertemplate=f"%{{y:,.2f}} {ax.unit.power}", **kw_args)


def _layout(fig: go.Figure, title: str, height: int, xtitle: str | None = None) -> go.Figure:
    fig.update_layout(template=_TEMPLATE, title=dict(text=title), height=height, hovermode="x unified",
                      legend=dict(orientation="v", yanchor="top", y=1.0, x=1.02, xanchor="left"))
    if xtitle:
        fig.update_xaxes(title_text=xtitle)
    return fig


def _empty_figure(title: str, message: str, height: int = 220) -> go.Figure:
    fig = go.Figure(layout=dict(template=_TEMPLATE, title=dict(text=title), height=height,
                                xaxis=dict(visible=False), yaxis=dict(visible=False)))
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=15, color="#555555"))
    return fig


def _palette(colors: tuple[str, ...], k: int) -> str:
    return colors[k % len(colors)]


def _fleet_colors(info: pd.DataFrame) -> dict[str, str]:
    counters: dict[tuple, int] = {}
    out = {}
    for fleet, row in info.iterrows():
        kind = str(row.get("type", "")).lower()
        if row["role"] == "storage":
            colors = _STORAGE
        elif row["role"] == "source":
            colors = _SOLAR if ("pv" in kind or "solar" in kind) else _WIND if "wind" in kind else _OTHER_SOURCE
        else:
            colors = _LOADS
        k = counters.get(colors, 0)
        counters[colors] = k + 1
        out[str(fleet)] = _palette(colors, k)
    return out


def _fleets_by_role(results: Results, role: str) -> list[str]:
    info = results.fleet_info
    return [str(f) for f in info.index[(info["role"] == role).to_numpy()]]


def _fleets_with(results: Results, quantity: str) -> list[str]:
    cols = results.fleets.columns
    return [str(f) for f, q in cols if q == quantity]


def _node_sum(results: Results, quantity: str) -> pd.Series:
    return results.nodes.xs(quantity, axis=1, level="quantity").sum(axis=1)


def _exo(results: Results, column: str) -> pd.Series | None:
    x = results.exogenous
    if column not in x.columns:
        return None
    return x[column].reindex(results.index)

def _larger_unit(*runs: Results) -> PowerUnit:
    units = [power_unit(r) for r in runs]
    return _MW if _MW in units else _KW


def _rgba(hex_color: str, alpha: float) -> str:
    """``#RRGGBB`` as ``rgba(r,g,b,alpha)`` (a translucent fill of a line's colour)."""
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
