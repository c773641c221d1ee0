"""Plotly figures of one run (:class:`~vpp.results.Results`), and the conventions
every figure of :mod:`vpp.dashboards` follows (the KPI table is in
:mod:`~vpp.dashboards.kpi_table`, figures comparing strategies in
:mod:`~vpp.dashboards.comparison_figures`, the shared look in ``_style``).

Every function takes a Results (or a comparison) and returns a
:class:`plotly.graph_objects.Figure`; none writes a file or opens a browser.
Figures read Results and KPIs only (DataFrames, :func:`vpp.kpi.vpp_series`),
never the engine, assets or optimizer.

Conventions shared by all figures:

* Power keeps the project's generator sign: injection into the VPP bus
  (generation, storage discharge, grid import) is positive, consumption
  negative.  Figures that say otherwise in their axis title (grid exchange:
  import > 0) say so.
* A step's value is the mean over the interval starting at its timestamp, so
  time series are drawn as steps (``line.shape = "hv"``) and the last
  interval is closed by one extra point at the end of the period.
* Time is the run's tz-aware index; plotly.js shows the wall-clock time of
  the stored offset, and the axis title names the time zone.
* Power is shown in kW, or in MW for the whole run when its largest power
  reaches :data:`MW_THRESHOLD_KW`; energies follow (kWh or MWh).
* Colours are the colour-blind-safe palettes of Okabe & Ito (2008), *Color
  Universal Design*, https://jfly.uni-koeln.de/color/, extended by Paul Tol's
  "muted" scheme (SRON/EPS/TN/09-002, https://personal.sron.nl/~pault/).
* A figure whose data the run lacks (no baseline, no storage, no buildings,
  no dispatch windows) comes back as an empty figure with a note, never an
  exception.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vpp.dashboards._style import (
    _ABS_TOL,
    _BASELINE_COLOR,
    _CURTAILED,
    _EXPORT,
    _EXPORTED,
    _IMPORT,
    _LOADS,
    _LOCAL,
    _OKABE_ITO,
    _STRATEGIES,
    _area,
    _Axis,
    _empty_figure,
    _exo,
    _fleet_colors,
    _fleets_by_role,
    _fleets_with,
    _larger_unit,
    _layout,
    _line,
    _node_sum,
    _rgba,
    _state_x,
    _step_y,
    _text,
    _tz_label,
    power_unit,
)
from vpp.kpi import vpp_series
from vpp.results import Results

_BALANCE_REL = 1e-9     # energy below this share of the total is numerical noise

__all__ = [
    "supply_demand_figure",
    "green_power_figure",
    "grid_exchange_figure",
    "baseline_overlay_figure",
    "storage_figure",
    "building_temperature_figure",
    "solve_time_figure",
    "slack_figure",
    "shadow_price_figure",
    "dr_events_figure",
    "market_figure",
]


# -- 1. supply and demand ------------------------------------------------------------
def supply_demand_figure(results: Results, *, show_price: bool = True) -> go.Figure:
    """Stacked supply (above zero) and demand (below zero) of the whole VPP.

    Supply: each source fleet, each storage fleet's discharge, grid import.
    Demand: each load fleet, each storage fleet's charge, grid export.  The
    grid exchange is the *settled* one, as the KPIs count it
    (:func:`vpp.kpi.vpp_series`): under the VPP settlement the nodes' net
    exchange, so power one node exports and another imports in the same step
    is not drawn twice (the title states how much moved between nodes; each
    node's own exchange is in :func:`grid_exchange_figure`); under node
    settlement each node's import and export, summed.  With the generator
    sign every fleet's power goes to the side of its sign, so the two stacks
    mirror each other at every step (the energy balance).  A fleet whose
    power takes the other sign at times (a source's own use, a load feeding
    in) gets an extra trace on that side.

    Parameters
    ----------
    results : Results
    show_price : bool
        Draw the import price [CNY/kWh] on a secondary axis if the run has it.

    Returns
    -------
    plotly.graph_objects.Figure
        Trace names: the fleet names (sources, loads), ``"<fleet> discharge"``
        and ``"<fleet> charge"`` (storage), ``"grid import"``, ``"grid export"``
        and ``"import price"``.  Power in kW or MW, generator sign.
    """
    ax = _Axis(results)
    info = results.fleet_info
    power = results.power()
    colors = _fleet_colors(info)
    # stacking order from zero outwards: sources | loads first, then storage, then the grid
    supply: dict[str, list] = {"source": [], "load": [], "storage": []}
    demand: dict[str, list] = {"source": [], "load": [], "storage": []}
    for role in ("source", "load", "storage"):
        for fleet in _fleets_by_role(results, role):
            p = power[fleet]
            pos, neg = p.clip(lower=0.0), p.clip(upper=0.0)
            if role == "storage":
                supply[role].append((f"{fleet} discharge", pos, colors[fleet]))
                demand[role].append((f"{fleet} charge", neg, colors[fleet]))
            elif role == "source":
                supply[role].append((fleet, pos, colors[fleet]))
                if (neg < 0).any():
                    demand[role].append((f"{fleet} own use", neg, colors[fleet]))
            else:
                demand[role].append((fleet, neg, colors[fleet]))
                if (pos > 0).any():
                    supply[role].append((f"{fleet} feed-in", pos, colors[fleet]))
    settled = vpp_series(results)
    supply = [*supply["source"], *supply["load"], *supply["storage"], ("grid import", settled["import_kw"], _IMPORT)]
    demand = [*demand["load"], *demand["source"], *demand["storage"], ("grid export", -settled["export_kw"], _EXPORT)]

    price = _exo(results, "price_import_cny_per_kwh") if show_price else None
    fig = make_subplots(specs=[[{"secondary_y": price is not None}]])
    for name, kw, color in supply:
        fig.add_trace(_area(ax, kw, name, color, "supply", legendgrouptitle_text="supply (> 0)"))
    for name, kw, color in demand:
        fig.add_trace(_area(ax, kw, name, color, "demand", legendgrouptitle_text="demand (< 0)"))
    if price is not None:
        fig.add_trace(go.Scatter(
            x=ax.x, y=_step_y(price, ax.closed), name="import price", mode="lines", legendgroup="price",
            line=dict(color=_OKABE_ITO["black"], dash="dot", width=1.5, shape="hv"),
            hovertemplate="%{y:.3f} CNY/kWh"), secondary_y=True)
        top = float(np.nanmax(price)) * 1.1 if np.isfinite(np.nanmax(price)) else 1.0
        fig.update_yaxes(title_text="import price [CNY/kWh]", secondary_y=True, range=[0.0, top],
                         tickmode="linear", tick0=0.0, dtick=0.25 if top > 0.6 else 0.05, tickformat=".2f",
                         showgrid=False, zeroline=False)
    fig.update_yaxes(title_text=f"power [{ax.unit.power}] (supply > 0, demand < 0)", secondary_y=False)
    notes = [_between_nodes_note(results, settled)] + (
        ["dotted: time-of-use import price (right axis)"] if price is not None else [])
    title = ("Supply and demand of the VPP: sources, storage and grid import above zero mirror "
             "loads, charging and export below"
             + "<br><sub>" + "; ".join(n for n in notes if n) + "</sub>")
    fig = _layout(fig, title, 640, _tz_label(ax.index))
    # many fleets: a legend below the plot never scrolls or hides the price axis
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.24, x=0.0, xanchor="left"),
                      margin=dict(b=190))
    return fig


def _between_nodes_note(results: Results, settled: pd.DataFrame) -> str:
    """What the settled grid exchange leaves out: energy one node exported to another."""
    ax = _Axis(results)
    gross_kwh = float(_node_sum(results, "grid_export_kw").sum()) * results.dt_h
    settled_kwh = float(settled["export_kw"].sum()) * results.dt_h
    what = "grid import and export as settled"
    moved = gross_kwh - settled_kwh
    if results.settlement == "vpp" and moved > _BALANCE_REL * max(gross_kwh, 1.0):
        e = ax.unit
        return (f"{what} (the nodes' net exchange): {moved * e.factor:,.1f} {e.energy} flowed between nodes "
                f"(gross node export {gross_kwh * e.factor:,.1f}, settled {settled_kwh * e.factor:,.1f} {e.energy})")
    return what if results.settlement == "vpp" else f"{what}, node by node"


# -- 2. where the green power went -------------------------------------------------------
def green_power_figure(results: Results) -> go.Figure:
    """Green power used locally, exported and curtailed over time, and totals.

    Left: stacked ``used locally`` + ``exported`` + ``curtailed`` per step,
    which add up to the green power available before curtailment (dashed
    line).  Right: the energy totals as a donut, with the local share in the
    middle.  Definitions as in :mod:`vpp.kpi` (export is attributed to green
    generation first).

    Returns
    -------
    plotly.graph_objects.Figure
        Trace names ``"used locally"``, ``"exported"``, ``"curtailed"``,
        ``"green available"`` and ``"green energy"`` (the donut). [kW or MW]
    """
    ax = _Axis(results)
    v = vpp_series(results)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.74, 0.26], horizontal_spacing=0.06,
                        specs=[[{"type": "xy"}, {"type": "domain"}]])
    flows = (("used locally", v["green_local_kw"], _LOCAL), ("exported", v["green_exported_kw"], _EXPORTED),
             ("curtailed", v["curtailed_kw"], _CURTAILED))
    for name, kw, color in flows:
        fig.add_trace(_area(ax, kw, name, color, "green"), row=1, col=1)
    fig.add_trace(_line(ax, v["green_available_kw"], "green available", _OKABE_ITO["black"], dash="dash",
                        width=1.2), row=1, col=1)
    totals_kwh = np.array([float(kw.sum()) * results.dt_h for _, kw, _ in flows])
    available_kwh = float(v["green_available_kw"].sum()) * results.dt_h
    unit = ax.unit
    fig.add_trace(go.Pie(
        labels=[name for name, _, _ in flows], values=totals_kwh * unit.factor, name="green energy",
        hole=0.55, sort=False, direction="clockwise", marker=dict(colors=[c for _, _, c in flows]),
        texttemplate="%{percent:.1%}", insidetextorientation="horizontal",
        hovertemplate=f"%{{label}}: %{{value:,.1f}} {unit.energy}<extra></extra>", showlegend=False),
        row=1, col=2)
    if available_kwh > 0:
        share = totals_kwh / available_kwh
        centre = f"{100 * share[0]:.1f} %<br>used locally"
        title = (f"Where the green power went: {100 * share[0]:.1f} % used locally, "
                 f"{100 * share[1]:.1f} % exported, {100 * share[2]:.1f} % curtailed"
                 f"<br><sub>of {available_kwh * unit.factor:,.1f} {unit.energy} available; the dashed line "
                 "is the green power available before curtailment</sub>")
    else:
        centre, title = "no green<br>generation", "Where the green power went: no green generation in this run"
    fig.update_traces(title=dict(text=centre, position="middle center", font=dict(size=15)), selector=dict(type="pie"))
    fig.update_yaxes(title_text=f"green power [{unit.power}]", row=1, col=1)
    fig.update_xaxes(title_text=_tz_label(ax.index), row=1, col=1)
    return _layout(fig, title, 460)


# -- 3. grid exchange per node ------------------------------------------------------------
def grid_exchange_figure(results: Results) -> go.Figure:
    """Each node's exchange with the upstream grid against its limits.

    One panel per node: net import (import > 0, export < 0), the import limit
    (dashed, above zero) and the export limit (dashed, below zero) as
    recorded in ``node_info``; steps whose import or export exceeds a limit
    are marked with crosses.

    Returns
    -------
    plotly.graph_objects.Figure
        Trace names ``"<node> net import"``, ``"<node> import limit"``,
        ``"<node> export limit"`` (finite limits only) and ``"<node> limit
        violated"`` (only if a violation occurs). [kW or MW]
    """
    ax = _Axis(results)
    nodes = list(dict.fromkeys(results.nodes.columns.get_level_values("node")))
    fig = make_subplots(rows=len(nodes), cols=1, shared_xaxes=True, vertical_spacing=0.08 / max(len(nodes), 1),
                        subplot_titles=[_text(n) for n in nodes])
    span = [ax.x[0], ax.x[-1]] if len(ax.x) else []
    n_violations = n_cuts = 0
    for i, node in enumerate(nodes, start=1):
        df = results.nodes[node]
        label = _text(node)
        net = df["grid_import_kw"] - df["grid_export_kw"]
        fig.add_trace(go.Scatter(
            x=ax.x, y=ax.y(net), name=f"{label} net import", mode="lines", fill="tozeroy",
            line=dict(color=_OKABE_ITO["blue"], width=1.2, shape="hv"), fillcolor="rgba(0,114,178,0.25)",
            hovertemplate=f"%{{y:,.2f}} {ax.unit.power}"), row=i, col=1)
        limits = results.node_info.loc[node] if node in results.node_info.index else pd.Series(dtype=float)
        for name, sign, color in (("import limit", 1.0, _IMPORT), ("export limit", -1.0, _EXPORT)):
            lim = float(limits.get(f"{name.split()[0]}_limit_kw", np.inf))
            if np.isfinite(lim) and span:
                fig.add_trace(go.Scatter(
                    x=span, y=[sign * lim * ax.unit.factor] * 2, name=f"{label} {name}", mode="lines",
                    line=dict(color=color, dash="dash", width=1.5),
                    hovertemplate=f"{name}: %{{y:,.2f}} {ax.unit.power}<extra></extra>"), row=i, col=1)
        bad = ((df["import_violation_kw"] > 0) | (df["export_violation_kw"] > 0)).to_numpy()
        n_violations += int(bad.sum())
        if bad.any():
            fig.add_trace(go.Scatter(
                x=results.index[bad], y=net.to_numpy()[bad] * ax.unit.factor, name=f"{label} limit violated",
                mode="markers", marker=dict(symbol="x", size=9, color=_OKABE_ITO["vermillion"]),
                hovertemplate=f"over the limit: %{{y:,.2f}} {ax.unit.power}"), row=i, col=1)
        cut = df["shed_kw"].to_numpy() > 0 if "shed_kw" in df.columns else np.zeros(len(df), dtype=bool)
        n_cuts += int(cut.sum())
        if cut.any():
            fig.add_trace(go.Scatter(
                x=results.index[cut], y=net.to_numpy()[cut] * ax.unit.factor, name=f"{label} loads cut by the breaker",
                mode="markers", marker=dict(symbol="triangle-down", size=8, color=_OKABE_ITO["orange"]),
                customdata=df["shed_kw"].to_numpy()[cut] * ax.unit.factor,
                hovertemplate=f"cut: %{{customdata:,.2f}} {ax.unit.power}"), row=i, col=1)
        fig.update_yaxes(title_text=f"[{ax.unit.power}]", row=i, col=1)
    fig.update_xaxes(title_text=_tz_label(ax.index), row=len(nodes), col=1)
    verdict = (f"{n_violations} node-steps over a limit (crosses)" if n_violations
               else "no limit violated")
    if n_cuts:
        verdict += f"; loads cut at the limit in {n_cuts} node-steps (triangles)"
    title = (f"Grid exchange per node against its connection limits: {verdict}"
             "<br><sub>net import > 0, export < 0; dashed: import and export limits</sub>")
    return _layout(fig, title, 170 + 220 * len(nodes))


# -- 4. baseline overlay ------------------------------------------------------------------
def baseline_overlay_figure(results: Results, baseline: Results | None = None) -> go.Figure:
    """VPP net import and green power used locally: this run vs the baseline.

    Parameters
    ----------
    results : Results
    baseline : Results, optional
        Default ``results.baseline``.  Without one the figure is empty with a
        note (the run is the baseline itself).

    Returns
    -------
    plotly.graph_objects.Figure
        Two panels sharing the time axis; trace names: the strategy and
        ``"<baseline strategy> (baseline)"`` (legend shown once). [kW or MW]
    """
    base = baseline if baseline is not None else results.baseline
    if base is None:
        return _empty_figure("This run vs the baseline", "No baseline: this run is the baseline itself.")
    unit = _larger_unit(results, base)
    runs = ((results, _text(results.strategy), _STRATEGIES[0], "solid"),
            (base, f"{_text(base.strategy)} (baseline)", _BASELINE_COLOR, "dash"))
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07,
                        row_heights=[0.38, 0.38, 0.24],
                        subplot_titles=["VPP net import (import > 0, export < 0)", "green power used locally",
                                        "green power used locally: this strategy minus the baseline"])
    totals, local = {}, []
    for r, name, color, dash in runs:
        ax = _Axis(r, unit)
        v = vpp_series(r)
        local.append(v["green_local_kw"])
        totals[name] = float(v["green_local_kw"].sum()) * r.dt_h * unit.factor
        for row, col in ((1, "net_import_kw"), (2, "green_local_kw")):
            fig.add_trace(_line(ax, v[col], name, color, dash=dash, legendgroup=name, showlegend=row == 1),
                          row=row, col=1)
    diff = local[0] - local[1].to_numpy()
    fig.add_trace(_line(_Axis(results, unit), diff, "difference", _LOCAL, width=1.0, showlegend=False,
                        fill="tozeroy"), row=3, col=1)
    for row in (1, 2, 3):
        fig.update_yaxes(title_text=f"[{unit.power}]", row=row, col=1)
    fig.update_xaxes(title_text=_tz_label(results.index), row=3, col=1)
    a, b = totals.values()
    title = (f"{_text(results.strategy)} vs the baseline: green energy used locally "
             f"{a:,.1f} vs {b:,.1f} {unit.energy} ({a - b:+,.1f} {unit.energy})"
             "<br><sub>solid: this strategy; dashed: source follows load</sub>")
    return _layout(fig, title, 720)






# -- 5. demand-response calls ---------------------------------------------------------------
_METHOD_COLORS = {"caiso_10in10": _OKABE_ITO["reddish_purple"], "top5_of_10": _OKABE_ITO["sky_blue"],
                  "last5_working_days": _OKABE_ITO["bluish_green"], "pre_event": _OKABE_ITO["orange"]}
DR_CONTEXT_H = 3.0       # hours shown before and after each call's window


def dr_events_figure(results: Results) -> go.Figure:
    """Each demand-response call: the VPP's metered net import around the
    window, the true counterfactual (the baseline strategy's run on the same
    draws), every baseline method's estimate over the window, and the paid
    band of the settling method (baseline minus ``paid_min``..``paid_max`` x
    capacity for peak shaving, plus for valley filling).

    Returns
    -------
    plotly.graph_objects.Figure
        One panel per call, titled with its settlement. [kW or MW]
    """
    events = results.tables.get("dr_events")
    if events is None or events.empty:
        return _empty_figure("Demand-response calls", "No demand-response call in this run.")
    base = results.tables.get("dr_baselines", pd.DataFrame(columns=["event", "method", "time", "baseline_kw"]))
    unit = _larger_unit(results, results.baseline) if results.baseline is not None else power_unit(results)
    v = vpp_series(results)["net_import_kw"]
    cf = vpp_series(results.baseline)["net_import_kw"] if results.baseline is not None else None
    titles = [_dr_title(e, unit) for _, e in events.iterrows()]
    fig = make_subplots(rows=len(events), cols=1, subplot_titles=titles, vertical_spacing=0.12 / max(len(events), 1))
    pad = pd.Timedelta(hours=DR_CONTEXT_H)
    for row, (_, e) in enumerate(events.iterrows(), start=1):
        near = (v.index >= e["start"] - pad) & (v.index < e["end"] + pad)
        first = row == 1
        fig.add_trace(go.Scatter(x=v.index[near], y=v[near] * unit.factor, name="metered net import",
                                 mode="lines",
                                 line=dict(color=_OKABE_ITO["blue"], width=2, shape="hv"), legendgroup="metered",
                                 showlegend=first), row=row, col=1)
        if cf is not None:
            fig.add_trace(go.Scatter(x=cf.index[near], y=cf[near] * unit.factor, name="true counterfactual",
                                     mode="lines",
                                     line=dict(color=_BASELINE_COLOR, width=1.5, dash="dash", shape="hv"),
                                     legendgroup="cf", showlegend=first), row=row, col=1)
        mine = base[base["event"] == e["event"]]
        for method, b in mine.groupby("method", sort=False):
            y = b["baseline_kw"].to_numpy() * unit.factor
            fig.add_trace(go.Scatter(x=b["time"], y=y, name=f"baseline: {method}", legendgroup=method,
                                     mode="lines",
                                     showlegend=first, line=dict(color=_METHOD_COLORS.get(method, "#777777"),
                                                                 width=3 if method == e["baseline"] else 1.2,
                                                                 dash="solid" if method == e["baseline"] else "dot",
                                                                 shape="hv")), row=row, col=1)
            if method == e["baseline"]:
                _dr_band(fig, row, b["time"], y, e, unit, first)
        fig.update_yaxes(title_text=f"[{unit.power}]", row=row, col=1)
    return _layout(fig, "Demand-response calls: metered import, baselines and the paid band"
                   "<br><sub>thick: the settling baseline; shaded: delivery paid (50-120 % of the bid by "
                   "default); dashed: what the load would have been</sub>", 260 + 300 * len(events))


def _dr_band(fig: go.Figure, row: int, times, baseline_y, e: pd.Series, unit, first: bool) -> None:
    """Shade the import levels whose delivery is paid."""
    sign = -1.0 if e["kind"] == "peak_shaving" else 1.0
    cap = e["capacity_kw"] * unit.factor
    lo_frac = e.get("paid_min_frac", 0.5)
    hi_frac = e.get("paid_max_frac", 1.2)
    for frac, fill in ((lo_frac, None), (hi_frac, "tonexty")):
        fig.add_trace(go.Scatter(x=times, y=baseline_y + sign * frac * cap, mode="lines", fill=fill,
                                 line=dict(width=0, shape="hv"), fillcolor="rgba(0,158,115,0.18)",
                                 name="paid band", legendgroup="band", showlegend=first and fill is not None,
                                 hoverinfo="skip"), row=row, col=1)


def _dr_title(e: pd.Series, unit) -> str:
    paid = f"paid {e['payment_cny']:,.0f} CNY" if e["payment_cny"] > 0 else "not paid"
    true = f"; true {e['true_delivered_kwh'] * unit.factor:,.1f}" if "true_delivered_kwh" in e else ""
    return (f"{_text(e['event'])} ({e['kind'].replace('_', ' ')}, {e['baseline']}): delivered "
            f"{e['delivered_kwh'] * unit.factor:,.1f}{true} {unit.energy} of {e['bid_kwh'] * unit.factor:,.1f} "
            f"bid ({e['delivered_ratio']:.0%}), {paid}")


def market_figure(results: Results) -> go.Figure:
    """Two-settlement market: the committed day-ahead position against the
    metered net import, the deviation (shaded beyond the tolerance band), and
    the day-ahead and real-time prices.

    Returns
    -------
    plotly.graph_objects.Figure
        Three panels sharing the time axis. [kW or MW; CNY/kWh]
    """
    t = results.tables.get("market")
    if t is None or t.empty:
        return _empty_figure("Day-ahead market", "This run is settled by the tariff, not a market.")
    unit = power_unit(results)
    x = pd.DatetimeIndex(t["time"])
    pos, met = t["position_kw"].to_numpy() * unit.factor, t["metered_kw"].to_numpy() * unit.factor
    band = t["tolerance_frac"].to_numpy() * np.abs(pos)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07, row_heights=[0.42, 0.29, 0.29],
                        subplot_titles=["day-ahead position and metered net import (import > 0)",
                                        "deviation: metered minus position (shaded: the tolerance band)",
                                        "prices"])
    step = dict(shape="hv")
    fig.add_trace(go.Scatter(x=x, y=pos, name="day-ahead position", mode="lines",
                             line=dict(color=_BASELINE_COLOR, dash="dash", width=1.8, **step)), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=met, name="metered net import", mode="lines",
                             line=dict(color=_OKABE_ITO["blue"], width=1.8, **step)), row=1, col=1)
    for y, fill in ((band, None), (-band, "tonexty")):
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", fill=fill, line=dict(width=0, **step), showlegend=False,
                                 fillcolor="rgba(0,158,115,0.18)", hoverinfo="skip"), row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=met - pos, name="deviation", mode="lines",
                             line=dict(color=_OKABE_ITO["vermillion"], width=1.4, **step)), row=2, col=1)
    for col, name, color in (("da_cny_per_kwh", "day-ahead price", _OKABE_ITO["reddish_purple"]),
                             ("rt_cny_per_kwh", "real-time price", _OKABE_ITO["orange"])):
        fig.add_trace(go.Scatter(x=x, y=t[col], name=name, mode="lines", line=dict(color=color, width=1.4, **step)),
                      row=3, col=1)
    for row, label in ((1, f"[{unit.power}]"), (2, f"[{unit.power}]"), (3, "[CNY/kWh]")):
        fig.update_yaxes(title_text=label, row=row, col=1)
    dev = float(np.abs(met - pos).sum() * results.dt_h)
    fig.update_xaxes(title_text=_tz_label(results.index), row=3, col=1)
    return _layout(fig, f"Day-ahead market: position, metered import and prices; deviation {dev:,.1f} "
                   f"{unit.energy} in total", 760)


# -- 6. extras: storage, buildings, dispatch ---------------------------------------------------
def _storage_fleets(results: Results) -> list[str]:
    return _fleets_by_role(results, "storage")


def _soc_pct(results: Results, fleet: str) -> pd.Series | None:
    df = results.fleets[fleet]
    if "soc_frac" in df.columns:
        return 100.0 * df["soc_frac"]
    info = results.fleet_info
    capacity = float(info.at[fleet, "capacity_kwh"]) if "capacity_kwh" in info.columns else np.nan
    if "e_kwh" in df.columns and np.isfinite(capacity) and capacity > 0:
        return 100.0 * df["e_kwh"] / capacity
    return None


def storage_figure(results: Results) -> go.Figure:
    """Storage fleets: state of charge (top) and power (bottom, discharge > 0).

    State of charge is ``soc_frac`` [%], or ``e_kwh / capacity_kwh`` when a
    fleet records energy only; it is the state reached at the end of each
    step, so it is drawn at the step's end (power: as steps over the
    interval).

    Returns
    -------
    plotly.graph_objects.Figure
        Trace names ``"<fleet> SoC"`` and ``"<fleet> power"``; empty with a
        note when the run has no storage fleet.
    """
    fleets = _storage_fleets(results)
    title = "Storage: state of charge (top) and power, discharge > 0 (bottom)"
    if not fleets:
        return _empty_figure(title, "No storage fleet in this run.")
    ax = _Axis(results)
    colors = _fleet_colors(results.fleet_info)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.5, 0.5])
    power = results.power()
    for fleet in fleets:
        soc = _soc_pct(results, fleet)
        if soc is not None:
            fig.add_trace(go.Scatter(
                x=_state_x(results), y=soc.to_numpy(dtype=float), name=f"{fleet} SoC", mode="lines",
                line=dict(color=colors[fleet], width=2), legendgroup=fleet,
                hovertemplate="%{y:.1f} %"), row=1, col=1)
        fig.add_trace(_line(ax, power[fleet], f"{fleet} power", colors[fleet], dash="dot", legendgroup=fleet),
                      row=2, col=1)
    fig.update_yaxes(title_text="state of charge [%]", range=[0, 100], row=1, col=1)
    fig.update_yaxes(title_text=f"power [{ax.unit.power}]", row=2, col=1)
    fig.update_xaxes(title_text=_tz_label(ax.index), row=2, col=1)
    return _layout(fig, title, 520)


def _thermal_fleets(results: Results) -> list[str]:
    return _fleets_with(results, "temp_mean_c")


def _comfort_band(results: Results, fleet: str) -> tuple[pd.Series, pd.Series] | None:
    """Occupied-hours comfort band [degC] per step, if the run records one.

    Taken from the fleet's ``comfort_lo_c`` / ``comfort_hi_c`` columns when
    present, else from the resolved scenario's building parameters
    (cooling months: ``[cooling_setpoint_c - comfort_band_k,
    cooling_setpoint_c]``; heating months: ``[heating_setpoint_c,
    heating_setpoint_c + comfort_band_k]``; other months: none).
    """
    df = results.fleets[fleet]
    if {"comfort_lo_c", "comfort_hi_c"} <= set(df.columns):
        return df["comfort_lo_c"], df["comfort_hi_c"]
    try:
        scenario = tomllib.loads(results.scenario_toml or "")
    except tomllib.TOMLDecodeError:
        return None
    entry = next((f for f in scenario.get("fleets", []) if f.get("name") == fleet), None)
    p = (entry or {}).get("params", {})
    needed = ("cooling_setpoint_c", "heating_setpoint_c", "comfort_band_k", "cooling_months", "heating_months")
    if not all(k in p for k in needed):
        return None
    month = results.index.month
    cool, heat = np.isin(month, p["cooling_months"]), np.isin(month, p["heating_months"])
    band = float(p["comfort_band_k"])
    lo = np.where(cool, p["cooling_setpoint_c"] - band, np.where(heat, p["heating_setpoint_c"], np.nan))
    hi = np.where(cool, p["cooling_setpoint_c"], np.where(heat, p["heating_setpoint_c"] + band, np.nan))
    return pd.Series(lo, index=results.index), pd.Series(hi, index=results.index)


def building_temperature_figure(results: Results) -> go.Figure:
    """Buildings: mean (and hottest) indoor temperature against the comfort band.

    Indoor temperatures are the fleet's state at the end of each step
    [degC], drawn at the step's end; the comfort band and the outdoor air
    temperature (``temp_air_c``, grey) hold over each interval and are drawn
    as steps.  Steps with comfort violation (``comfort_violation_kh > 0``)
    are marked.

    Returns
    -------
    plotly.graph_objects.Figure
        Trace names ``"<fleet> mean indoor"``, ``"<fleet> hottest indoor"``,
        ``"<fleet> comfort band"`` (when known), ``"<fleet> discomfort"``
        (when any) and ``"outdoor air"``; empty with a note when no fleet
        records ``temp_mean_c``.
    """
    fleets = _thermal_fleets(results)
    title = "Buildings: indoor temperature against the occupied-hours comfort band (shaded)"
    if not fleets:
        return _empty_figure(title, "No building fleet (no indoor temperature) in this run.")
    colors = _fleet_colors(results.fleet_info)
    ax = _Axis(results)
    x_state = _state_x(results)
    fig = go.Figure()
    total_kh = 0.0
    deg = "%{y:.1f} \u00b0C"
    for fleet in fleets:
        df = results.fleets[fleet]
        color = colors.get(fleet, _LOADS[0])
        band = _comfort_band(results, fleet)
        if band is not None:
            lo, hi = (_step_y(b, ax.closed) for b in band)
            fig.add_trace(go.Scatter(x=ax.x, y=lo, mode="lines", line=dict(width=0, shape="hv"),
                                     showlegend=False, hoverinfo="skip", legendgroup=f"{fleet} band"))
            fig.add_trace(go.Scatter(x=ax.x, y=hi, mode="lines", line=dict(width=0, shape="hv"),
                                     fill="tonexty", fillcolor=_rgba(color, 0.15),
                                     name=f"{fleet} comfort band", legendgroup=f"{fleet} band",
                                     hoverinfo="skip"))
        mean = df["temp_mean_c"].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(x=x_state, y=mean, name=f"{fleet} mean indoor", mode="lines",
                                 line=dict(color=color, width=2), hovertemplate=deg))
        if "temp_max_c" in df.columns:
            fig.add_trace(go.Scatter(x=x_state, y=df["temp_max_c"].to_numpy(dtype=float),
                                     name=f"{fleet} hottest indoor", mode="lines",
                                     line=dict(color=color, width=1, dash="dot"), hovertemplate=deg))
        if "comfort_violation_kh" in df.columns:
            viol = df["comfort_violation_kh"].to_numpy(dtype=float)
            total_kh += float(np.nansum(viol))
            bad = viol > 0
            if bad.any():
                fig.add_trace(go.Scatter(
                    x=x_state[bad], y=mean[bad], name=f"{fleet} discomfort", mode="markers",
                    marker=dict(symbol="x", size=8, color=_OKABE_ITO["vermillion"]),
                    customdata=viol[bad], hovertemplate="%{customdata:.2f} K h in this step"))
    outdoor = _exo(results, "temp_air_c")
    if outdoor is not None:
        fig.add_trace(go.Scatter(x=ax.x, y=_step_y(outdoor, ax.closed), name="outdoor air", mode="lines",
                                 line=dict(color="#999999", width=1.2, shape="hv"), hovertemplate=deg))
    fig.update_yaxes(title_text="temperature [\u00b0C]", zeroline=False)
    sub = f"comfort violation {total_kh:,.2f} K h (crosses)" if total_kh > 0 else "no comfort violation"
    return _layout(fig, f"{title}<br><sub>{sub}; solid: fleet mean, dotted: hottest building</sub>", 440,
                   _tz_label(results.index))


def solve_time_figure(results: Results) -> go.Figure:
    """Strategy time per dispatch window: model build and solve, stacked [s].

    Windows that fell back to the baseline strategy are marked.

    Returns
    -------
    plotly.graph_objects.Figure
        Trace names ``"model build"``, ``"solve"`` and ``"fallback"`` (when
        any); empty with a note when the run has no dispatch windows.
    """
    d = results.dispatch
    title = "Dispatch: time to build and solve each window"
    if d is None or len(d) == 0:
        return _empty_figure(title, "No dispatch windows recorded.")
    x = pd.DatetimeIndex(d.index)
    spacing_s = (pd.Series(x).diff().dropna().median().total_seconds() if len(x) > 1
                 else results.dt_h * 3600.0)
    width_ms = 0.8 * spacing_s * 1e3
    build = d["build_time_s"].to_numpy(dtype=float) if "build_time_s" in d else np.zeros(len(d))
    solve = d["solve_time_s"].to_numpy(dtype=float) if "solve_time_s" in d else np.zeros(len(d))
    status = d["status"].astype(str).to_numpy() if "status" in d else np.full(len(d), "")
    fig = go.Figure()
    for name, y, color in (("model build", build, _OKABE_ITO["sky_blue"]), ("solve", solve, _OKABE_ITO["blue"])):
        fig.add_trace(go.Bar(x=x, y=y, name=name, marker_color=color, width=width_ms, customdata=status,
                             hovertemplate="%{y:.3f} s (%{customdata})"))
    fallback = d["fallback"].astype(bool).to_numpy() if "fallback" in d else np.zeros(len(d), bool)
    if fallback.any():
        fig.add_trace(go.Scatter(x=x[fallback], y=(build + solve)[fallback], name="fallback", mode="markers",
                                 marker=dict(symbol="x", size=10, color=_OKABE_ITO["vermillion"]),
                                 customdata=status[fallback], hovertemplate="fallback (%{customdata})"))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="time [s]")
    total = float(np.nansum(build + solve))
    sub = (f"{len(d)} windows, {total:,.2f} s in total, "
           f"{int(fallback.sum())} fell back to the baseline (crosses)")
    return _layout(fig, f"{title}<br><sub>{sub}</sub>", 380, _tz_label(x))


def slack_figure(results: Results) -> go.Figure:
    """Where the optimizer leaned on its penalised slacks: per window, the slack
    its plan used over the horizon (storage/EV/batch energy short of targets
    [kWh], kelvin-hours outside comfort bands, exchange beyond node limits [kWh]).

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per slack (the ``slack_*`` columns of ``results.dispatch``);
        empty with a note when the strategy reports none.
    """
    d = results.dispatch
    title = "Penalised slacks in the plans (soft constraints the optimizer relaxed)"
    cols = [c for c in (d.columns if d is not None else []) if str(c).startswith("slack_")]
    if not cols:
        return _empty_figure(title, "This strategy reports no slack use.")
    x = pd.DatetimeIndex(d.index)
    names = [_slack_name(c) for c in cols]
    fig = make_subplots(rows=len(cols), cols=1, shared_xaxes=True, subplot_titles=[n for n, _ in names],
                        vertical_spacing=min(0.08, 0.5 / len(cols)))
    for i, (c, (name, unit), color) in enumerate(zip(cols, names, _STRATEGIES * len(cols), strict=False), start=1):
        y = d[c].to_numpy(dtype=float)
        y = np.where(np.abs(y) < _ABS_TOL, 0.0, y)         # solver tolerance, not slack use
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers", showlegend=False,
                                 line=dict(color=color, shape="hv"), marker=dict(size=4),
                                 hovertemplate=f"%{{y:,.3g}} {unit}<extra>{name}</extra>"), row=i, col=1)
        fig.update_yaxes(title_text=f"[{unit}]", rangemode="tozero", row=i, col=1)
    used = [n for (n, _), c in zip(names, cols, strict=True) if float(d[c].max()) > 1e-6]
    sub = ("used: " + ", ".join(used)) if used else "none used"
    fig.update_xaxes(title_text=_tz_label(x), row=len(cols), col=1)
    return _layout(fig, f"{title}<br><sub>{sub}; one panel per slack, in its own unit</sub>",
                   120 + 140 * len(cols))


def _slack_name(column: str) -> tuple[str, str]:
    """``slack_discomfort_kh`` -> (``discomfort``, ``K h``); ``..._kwh`` -> ``kWh``."""
    stem = column.removeprefix("slack_")
    for suffix, unit in (("_kwh", "kWh"), ("_kh", "K h")):
        if stem.endswith(suffix):
            return stem.removesuffix(suffix).replace("_", " "), unit
    return stem.replace("_", " "), "-"


SHADOW_PREFIX = "shadow_price_cny_per_kwh_"


def shadow_price_figure(results: Results) -> go.Figure:
    """The marginal value of energy the optimizer saw: per window, the dual of
    each node's balance row and of the VPP's settlement row in the block being
    dispatched, in the objective's units (tariff, carbon price, penalties). [CNY/kWh]

    Where it rises above the tariff a node limit or a service constraint binds;
    where it falls below, flexible loads and storage had room to take more.

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per node and one for the VPP (the ``shadow_price_cny_per_kwh_*``
        columns of ``results.dispatch``); empty with a note when there are none.
    """
    d = results.dispatch
    title = "Shadow price of energy (dual of the balance rows, first block of each window)"
    cols = [c for c in (d.columns if d is not None else []) if str(c).startswith(SHADOW_PREFIX)]
    if not cols:
        return _empty_figure(title, "This strategy reports no shadow prices.")
    x = pd.DatetimeIndex(d.index)
    fig = go.Figure()
    for c, color in zip(cols, _STRATEGIES, strict=False):
        name = c.removeprefix(SHADOW_PREFIX)
        fig.add_trace(go.Scatter(x=x, y=d[c].to_numpy(dtype=float), mode="lines", line=dict(color=color, shape="hv"),
                                 name="VPP account" if name == "vpp" else "node " + name.removeprefix("node_")))
    fig.update_yaxes(title_text="shadow price [CNY/kWh]")
    return _layout(fig, title, 340, _tz_label(x))
