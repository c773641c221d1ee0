"""Figures comparing strategies run on the same scenario and draws
(conventions: :mod:`vpp.dashboards.figures`)."""

from __future__ import annotations

from typing import Protocol

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vpp.dashboards._style import (
    _BASELINE_COLOR,
    _KW,
    _STRATEGIES,
    _TEMPLATE,
    HEADLINE_KPIS,
    _Axis,
    _empty_figure,
    _larger_unit,
    _layout,
    _line,
    _text,
    _tz_label,
    kpi_label,
)
from vpp.dashboards.kpi_table import _display_unit
from vpp.kpi import KPI_META, vpp_series
from vpp.results import Results

__all__ = ["ComparisonLike", "strategy_kpi_bars_figure", "strategy_overlay_figure"]


# -- comparison figures -------------------------------------------------------------------------
class ComparisonLike(Protocol):
    """What the comparison figures need (``vpp.api.Comparison`` has it)."""

    table: pd.DataFrame
    results: dict[str, Results]


def _strategy_colors(names) -> dict[str, str]:
    colors, k = {}, 0
    for name in names:
        if name == "source_follows_load":
            colors[name] = _BASELINE_COLOR
        else:
            colors[name] = _STRATEGIES[k % len(_STRATEGIES)]
            k += 1
    return colors


def strategy_kpi_bars_figure(comparison: ComparisonLike, kpis: tuple[str, ...] = HEADLINE_KPIS) -> go.Figure:
    """One bar chart per KPI, one bar per strategy.

    Fractions are shown in %; kW and kWh KPIs in the comparison's display
    unit.  Each panel's title says which direction is better; the legend
    names the strategies (the baseline in grey).

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Bar`` trace per strategy and KPI, named by the strategy
        (legend shown once per strategy); the KPI panels in
        :data:`HEADLINE_KPIS` order.
    """
    table = comparison.table
    names = [k for k in kpis if k in table.columns]
    if not names:
        return _empty_figure("Headline KPIs per strategy", "The comparison table has none of these KPIs.")
    unit = _larger_unit(*comparison.results.values()) if comparison.results else _KW
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    titles = []
    for name in names:
        _, shown = _display_unit(name, KPI_META.get(name, ("-",))[0], unit)
        hint = {"higher": " \u2191 better", "lower": " \u2193 better"}.get(KPI_META.get(name, ("", "none"))[1], "")
        titles.append(f"{kpi_label(name)} [{shown}]{hint}")
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, vertical_spacing=0.3 / rows,
                        horizontal_spacing=0.07)
    strategies = [str(s) for s in table.index]
    colors = _strategy_colors(strategies)
    for k, name in enumerate(names):
        factor, shown = _display_unit(name, KPI_META.get(name, ("-",))[0], unit)
        values = table[name].to_numpy(dtype=float) * factor
        for j, strategy in enumerate(strategies):
            label = _text(strategy)
            fig.add_trace(go.Bar(
                x=[label], y=[values[j]], name=label, legendgroup=label, showlegend=k == 0,
                marker_color=colors[strategy], hovertemplate=f"{label}: %{{y:,.2f}} {shown}<extra></extra>"),
                row=k // cols + 1, col=k % cols + 1)
    fig.update_xaxes(showticklabels=False, ticks="")
    fig.update_layout(template=_TEMPLATE, height=140 + 260 * rows, bargap=0.25, hovermode="closest",
                      legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0.0, xanchor="left"),
                      title=dict(text="Headline KPIs per strategy (grey: source follows load, the baseline)"),
                      margin=dict(t=130))
    return fig


def strategy_overlay_figure(comparison: ComparisonLike) -> go.Figure:
    """Green power used locally (top) and VPP net import (bottom), per strategy.

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per strategy and panel, named by the strategy (legend
        shown once). [kW or MW]
    """
    results = comparison.results
    if not results:
        return _empty_figure("Strategies over time", "The comparison holds no runs.")
    unit = _larger_unit(*results.values())
    colors = _strategy_colors(results)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=["green power used locally", "VPP net import (import > 0, export < 0)"])
    first = next(iter(results.values()))
    for name, r in results.items():
        ax = _Axis(r, unit)
        v = vpp_series(r)
        dash = "dash" if name == "source_follows_load" else "solid"
        for row, col in ((1, "green_local_kw"), (2, "net_import_kw")):
            fig.add_trace(_line(ax, v[col], _text(name), colors[name], dash=dash, legendgroup=name,
                                showlegend=row == 1), row=row, col=1)
    for row in (1, 2):
        fig.update_yaxes(title_text=f"[{unit.power}]", row=row, col=1)
    fig.update_xaxes(title_text=_tz_label(first.index), row=2, col=1)
    title = ("Strategies over time: more green power used locally (top) means less import (bottom)"
             "<br><sub>dashed grey: source follows load (baseline)</sub>")
    return _layout(fig, title, 600)
