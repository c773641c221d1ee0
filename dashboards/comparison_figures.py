"""Figures comparing strategies run on the same scenario and draws
(conventions: :mod:`vpp.dashboards.figures`)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
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
    _is_noise,
    _larger_unit,
    _layout,
    _line,
    _text,
    _tz_label,
    kpi_label,
)
from vpp.dashboards.kpi_table import _display_unit, _fmt, _judgement
from vpp.kpi import KPI_META, vpp_series
from vpp.results import Results

__all__ = ["ComparisonLike", "strategy_kpi_bars_figure", "strategy_delta_figure", "strategy_overlay_figure",
           "strategy_panels_figure"]

BASELINE = "source_follows_load"
_BETTER, _WORSE, _SAME = "#009E73", "#D55E00", "#999999"    # Okabe-Ito bluish green, vermillion; grey


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


def strategy_delta_figure(comparison: ComparisonLike, kpis: tuple[str, ...] = HEADLINE_KPIS) -> go.Figure:
    """Each strategy's difference to the baseline, one panel per KPI: diverging bars.

    A bar runs from zero to ``strategy - baseline`` (fractions in percentage
    points; kW and kWh in the comparison's unit; CO2 in t), green where the
    strategy is better than the baseline by the KPI's direction, orange where
    worse, grey where the KPI has no direction or the difference is within
    solver noise (then drawn as zero).  Differences of a few tenths of a point
    or percent that bars drawn from zero would hide are visible here.  A KPI on
    which every strategy equals the baseline gets no panel: the title names it.

    Returns
    -------
    plotly.graph_objects.Figure
        One horizontal ``go.Bar`` trace per KPI panel, named by the KPI; its
        ``y`` the strategies, ``x`` their differences.  An empty figure with a
        note when the comparison has no baseline run.
    """
    table = comparison.table
    names = [k for k in kpis if k in table.columns]
    strategies = [str(s) for s in table.index if str(s) != BASELINE]
    if BASELINE not in [str(s) for s in table.index] or not strategies or not names:
        return _empty_figure("Differences to the baseline", "The comparison has no baseline run to compare with.")
    unit = _larger_unit(*comparison.results.values()) if comparison.results else _KW
    base_row = table.loc[[i for i in table.index if str(i) == BASELINE][0]]
    panels = {name: _delta_bars(table, name, strategies, float(base_row[name]), unit) for name in names}
    same = [name for name, (deltas, _, _) in panels.items() if all(d == 0 for d in deltas)]
    names = [name for name in names if name not in same]
    note = ("<br><sub>the same as the baseline for every strategy: " + ", ".join(kpi_label(n) for n in same)
            + "</sub>") if same else ""
    title = ("Differences to the baseline (source follows load)<br><sub>green: better, orange: worse, grey: no "
             "preferred direction or the same within solver noise</sub>" + note)
    if not names:
        return _empty_figure("Differences to the baseline", "Every strategy matches the baseline on every KPI "
                                                            "shown (within solver noise).")
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    titles = []
    for name in names:
        _, shown = _display_unit(name, KPI_META.get(name, ("-",))[0], unit)
        better = KPI_META.get(name, ("", "none"))[1]
        hint = {"higher": ", \u2192 better", "lower": ", \u2190 better"}.get(better, "")
        titles.append(f"{kpi_label(name)} [{'pt' if shown == '%' else shown}{hint}]")
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, vertical_spacing=0.32 / rows,
                        horizontal_spacing=0.2)
    labels = [_text(s) for s in strategies]
    for k, name in enumerate(names):
        deltas, colors, texts = panels[name]
        shown = _display_unit(name, KPI_META.get(name, ("-",))[0], unit)[1]
        finite = [abs(d) for d in deltas if np.isfinite(d)]
        reach = max(finite + [0.0]) or 1.0
        fig.add_trace(go.Bar(
            y=labels, x=deltas, orientation="h", name=kpi_label(name), showlegend=False, marker_color=colors,
            text=texts, cliponaxis=False, textangle=0,
            textposition=["inside" if np.isfinite(d) and abs(d) > 0.6 * reach else "outside" for d in deltas],
            hovertemplate=f"%{{y}}: %{{x:+,.3g}} {'pt' if shown == '%' else shown} against the baseline"
                          "<extra></extra>"), row=k // cols + 1, col=k % cols + 1)
        fig.update_xaxes(range=[-1.5 * reach, 1.5 * reach], zeroline=True, zerolinewidth=2,
                         zerolinecolor="#444444", row=k // cols + 1, col=k % cols + 1)
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_layout(template=_TEMPLATE, height=120 + (90 + 34 * len(strategies)) * rows, hovermode="closest",
                      title=dict(text=title), margin=dict(t=130 if same else 110, l=20, r=30))
    return fig


def _delta_bars(table, name: str, strategies: list[str], base: float, unit) -> tuple[list, list, list]:
    """Each strategy's difference to *base* on KPI *name* in the shown unit (0 within noise, NaN
    where missing), its colour by the KPI's direction, and its label."""
    raw_unit, better = KPI_META.get(name, ("-", "none"))[:2]
    factor, _ = _display_unit(name, raw_unit, unit)
    deltas, colors, texts = [], [], []
    for strategy in strategies:
        value = float(table.loc[[i for i in table.index if str(i) == strategy][0], name])
        delta = value - base
        if not np.isfinite(delta) or _is_noise(delta, value, base, raw_unit):
            delta = 0.0 if np.isfinite(delta) else np.nan
        j = _judgement(better, delta, value, base, raw_unit) if np.isfinite(delta) else 0
        deltas.append(delta * factor)
        colors.append({1: _BETTER, -1: _WORSE}.get(j, _SAME))
        texts.append("\u2013" if not np.isfinite(delta) else ("0" if delta == 0 else _fmt(delta * factor, signed=True)))
    return deltas, colors, texts


def strategy_panels_figure(comparison: ComparisonLike) -> go.Figure:
    """Small multiples over time: one row per strategy, each with the baseline (dashed grey)
    behind it; left the green power used locally, right the VPP's net import.

    Returns
    -------
    plotly.graph_objects.Figure
        Per row a strategy trace and a ``"<strategy> baseline"`` trace in each
        panel (legend once per strategy). [kW or MW]
    """
    results = comparison.results
    if not results:
        return _empty_figure("Strategies over time", "The comparison holds no runs.")
    unit = _larger_unit(*results.values())
    colors = _strategy_colors(results)
    base = results.get(BASELINE)
    others = [n for n in results if n != BASELINE] or list(results)
    titles = [f"{_text(n)}: {what}" for n in others for what in ("green power used locally", "net import")]
    fig = make_subplots(rows=len(others), cols=2, shared_xaxes=True, shared_yaxes="columns",
                        vertical_spacing=0.18 / len(others), horizontal_spacing=0.08, subplot_titles=titles)
    for i, name in enumerate(others, start=1):
        for col, quantity in ((1, "green_local_kw"), (2, "net_import_kw")):
            if base is not None and name != BASELINE:
                fig.add_trace(_line(_Axis(base, unit), vpp_series(base)[quantity], "baseline", _BASELINE_COLOR,
                                    dash="dash", width=1.2, legendgroup="baseline", showlegend=i == 1 and col == 1),
                              row=i, col=col)
            r = results[name]
            fig.add_trace(_line(_Axis(r, unit), vpp_series(r)[quantity], _text(name), colors[name],
                                legendgroup=name, showlegend=col == 1), row=i, col=col)
        fig.update_yaxes(title_text=f"[{unit.power}]", row=i, col=1)
    first = next(iter(results.values()))
    fig.update_xaxes(title_text=_tz_label(first.index), row=len(others), col=1)
    fig.update_xaxes(title_text=_tz_label(first.index), row=len(others), col=2)
    title = ("Each strategy over time against the baseline (dashed grey)"
             "<br><sub>left: green power used locally; right: VPP net import (import > 0, export < 0)</sub>")
    return _layout(fig, title, 140 + 210 * len(others))
