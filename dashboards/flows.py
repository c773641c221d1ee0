"""Money, carbon and green-power flows of one run: what the run cost and when, what
it emitted and when, and where each source's green power went (figure
conventions: :mod:`vpp.dashboards.figures`).

Every total drawn here is the sum of the per-step series the KPIs are the sums
of (:func:`vpp.kpi.cost_series`, :func:`vpp.kpi.vpp_series`), so a figure and
the KPI table never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vpp.dashboards._style import (
    _CURTAILED,
    _EXPORTED,
    _IMPORT,
    _LOCAL,
    _OKABE_ITO,
    _Axis,
    _empty_figure,
    _exo,
    _layout,
    _rgba,
    _step_y,
    _text,
    _tz_label,
)
from vpp.kpi import cost_series, vpp_series
from vpp.results import Results

__all__ = ["cost_figure", "co2_figure", "green_flows_figure", "green_flows_kwh", "money_unit"]

_STORED = _OKABE_ITO["blue"]


@dataclass(frozen=True)
class MoneyUnit:
    """Display unit of money: ``value_shown = value_cny * factor``."""

    factor: float
    label: str


def money_unit(largest_cny: float) -> MoneyUnit:
    """CNY, k CNY or M CNY, by the largest absolute amount to show."""
    a = abs(float(largest_cny)) if np.isfinite(largest_cny) else 0.0
    if a >= 1e6:
        return MoneyUnit(1e-6, "M CNY")
    if a >= 1e4:
        return MoneyUnit(1e-3, "k CNY")
    return MoneyUnit(1.0, "CNY")


# -- cost ---------------------------------------------------------------------------
_COST_PARTS = (  # column of cost_series, label, sign in the total, colour
    ("energy_cny", "energy", 1.0, _IMPORT),
    ("export_revenue_cny", "export revenue", -1.0, _EXPORTED),
    ("demand_charge_cny", "demand charge", 1.0, _OKABE_ITO["reddish_purple"]),
    ("dr_net_cny", "demand response (penalties - payments)", 1.0, _OKABE_ITO["orange"]),
)


def cost_figure(results: Results) -> go.Figure:
    """The run's cost as it accrues, and its breakdown.

    Left: the running sum of each part of the cost -- energy (the settled
    import at the tariff, or the market's items), export revenue (drawn
    negative), the demand charge as each month's billed peak is set
    (:func:`vpp.kpi.cost_series`), demand-response penalties less payments --
    and of the total (thick).  Right: the breakdown as a waterfall from the
    parts to the total, which is the ``total_cost_cny`` KPI.  Parts that are
    zero throughout are left out.

    Returns
    -------
    plotly.graph_objects.Figure
        Trace names: each part's label, ``"total"`` and ``"breakdown"`` (the
        waterfall). [CNY, k CNY or M CNY]
    """
    c = cost_series(results)
    if not len(c):
        return _empty_figure("Cost", "no steps in this run")
    parts = [(col, label, sign, color) for col, label, sign, color in _COST_PARTS if c[col].abs().sum() > 0]
    running = {col: sign * c[col].cumsum() for col, _, sign, _ in parts}
    total = c["total_cny"].cumsum()
    unit = money_unit(max([float(total.abs().max())] + [float(s.abs().max()) for s in running.values()]))
    ax = _Axis(results)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.1)
    for col, label, _, color in parts:
        fig.add_trace(_running_line(results, running[col] * unit.factor, label, color, unit, 1.6), row=1, col=1)
    fig.add_trace(_running_line(results, total * unit.factor, "total", _OKABE_ITO["black"], unit, 3.0), row=1, col=1)
    sums = [(label, sign * float(c[col].sum())) for col, label, sign, _ in parts]
    fig.add_trace(go.Waterfall(
        name="breakdown", orientation="v", x=[label for label, _ in sums] + ["total"],
        y=[v * unit.factor for _, v in sums] + [float(c["total_cny"].sum()) * unit.factor],
        measure=["relative"] * len(sums) + ["total"], showlegend=False,
        texttemplate="%{y:,.3s}", textposition="outside",
        hovertemplate=f"%{{x}}: %{{y:,.2f}} {unit.label}<extra></extra>",
        connector=dict(line=dict(color="#999999", width=1)),
        increasing=dict(marker=dict(color=_IMPORT)), decreasing=dict(marker=dict(color=_EXPORTED)),
        totals=dict(marker=dict(color=_OKABE_ITO["black"]))), row=1, col=2)
    fig.update_yaxes(title_text=f"cost so far [{unit.label}]", row=1, col=1)
    fig.update_yaxes(title_text=f"[{unit.label}]", row=1, col=2)
    fig.update_xaxes(title_text=_tz_label(ax.index), row=1, col=1)
    total_cny = float(c["total_cny"].sum())
    title = (f"Cost: {total_cny * unit.factor:,.3f} {unit.label} in total"
             "<br><sub>left: each part's running sum (export revenue below zero; the demand charge accrues "
             "when a month's billed peak is set); right: the parts of the total</sub>")
    return _layout(fig, title, 460)


def _running_line(results: Results, values: pd.Series, name: str, color: str, unit: MoneyUnit, width: float):
    """A running sum drawn at the end of each step (its value once the step is paid)."""
    x = results.index + pd.Timedelta(hours=results.dt_h)
    return go.Scatter(x=x, y=values.to_numpy(), name=name, mode="lines", line=dict(color=color, width=width),
                      hovertemplate=f"{name}: %{{y:,.2f}} {unit.label}<extra></extra>")


# -- carbon -----------------------------------------------------------------------------
LONG_RUN_DAYS = 14      # runs longer than this are drawn per day


def co2_figure(results: Results) -> go.Figure:
    """CO2 of the settled import over time, with the grid's carbon intensity.

    Shaded: the emissions as a rate [t/h] (import [kW] times intensity
    [kg/kWh] / 1000) per step; for runs longer than :data:`LONG_RUN_DAYS`
    each day's emissions [t/day].  Either way they sum to the ``co2_kg`` KPI.
    Dotted line (right axis): the carbon intensity of grid power [kg/kWh]
    (its daily mean on long runs).

    Returns
    -------
    plotly.graph_objects.Figure
        Trace names ``"CO2 of imports"`` and ``"carbon intensity"``.
    """
    c = cost_series(results)
    ax = _Axis(results)
    intensity = _exo(results, "co2_kg_per_kwh")
    daily = len(results.index) * results.dt_h > 24.0 * LONG_RUN_DAYS
    fig = make_subplots(specs=[[{"secondary_y": intensity is not None}]])
    if daily:
        co2_t = c["co2_kg"].resample("D").sum() / 1e3
        fig.add_trace(go.Bar(x=co2_t.index, y=co2_t.to_numpy(), name="CO2 of imports",
                             marker=dict(color=_OKABE_ITO["vermillion"], line=dict(width=0)),
                             hovertemplate="%{y:,.1f} t<extra>CO2 of imports, %{x|%Y-%m-%d}</extra>"),
                      secondary_y=False)
        if intensity is not None:
            mean = intensity.resample("D").mean()
            fig.add_trace(go.Scatter(x=mean.index, y=mean.to_numpy(), name="carbon intensity", mode="lines",
                                     line=dict(color=_OKABE_ITO["black"], dash="dot", width=1.4),
                                     hovertemplate="%{y:.3f} kg/kWh<extra>daily mean intensity</extra>"),
                          secondary_y=True)
        unit, what = "t/day", "each day's emissions"
    else:
        rate_t_h = c["co2_kg"] / results.dt_h / 1e3
        fig.add_trace(go.Scatter(
            x=ax.x, y=_step_y(rate_t_h, ax.closed), name="CO2 of imports", mode="lines", fill="tozeroy",
            line=dict(color=_OKABE_ITO["vermillion"], width=1.0, shape="hv"),
            hovertemplate="%{y:,.3f} t/h<extra>CO2 of imports</extra>"), secondary_y=False)
        if intensity is not None:
            fig.add_trace(go.Scatter(
                x=ax.x, y=_step_y(intensity, ax.closed), name="carbon intensity", mode="lines",
                line=dict(color=_OKABE_ITO["black"], dash="dot", width=1.4, shape="hv"),
                hovertemplate="%{y:.3f} kg/kWh<extra>carbon intensity</extra>"), secondary_y=True)
        unit, what = "t/h", "emissions as a rate"
    if intensity is not None:
        fig.update_yaxes(title_text="carbon intensity [kg CO2/kWh]", secondary_y=True, rangemode="tozero",
                         showgrid=False, zeroline=False)
    fig.update_yaxes(title_text=f"CO2 of imports [{unit}]", secondary_y=False, rangemode="tozero")
    total_t = float(c["co2_kg"].sum()) / 1e3
    imported_kwh = float(vpp_series(results)["import_kw"].sum()) * results.dt_h
    mean = f"; {1e3 * total_t / imported_kwh:.3f} kg per imported kWh" if imported_kwh > 0 else ""
    title = (f"CO2 of the grid import: {total_t:,.1f} t in total{mean}"
             f"<br><sub>{what} (the settled import times the grid's intensity); "
             "dotted: carbon intensity (right axis)</sub>")
    return _layout(fig, title, 420, _tz_label(ax.index))


# -- green power by source and destination -----------------------------------------------
_DESTINATIONS = (("used by loads", _LOCAL), ("stored", _STORED), ("exported", _EXPORTED),
                 ("curtailed", _CURTAILED))


def green_flows_kwh(results: Results) -> pd.DataFrame:
    """Green energy from each source type to each destination. [kWh]

    Rows: the green fleets' types (``pv``, ``wind``, ...); columns ``used by
    loads``, ``stored``, ``exported``, ``curtailed``.  Per step, curtailment
    is each curtailable fleet's own (available less produced); the VPP's
    exported green power (:func:`vpp.kpi.vpp_series`: export counts against
    green generation first) and the part that charged storage
    (``min(storage charging, green used locally)``) are shared among the
    sources in proportion to what each produced in that step; the rest was
    used by loads.  Each source's row sums to its available energy; the
    columns sum to the run's ``green_local_kwh`` (used by loads + stored),
    ``green_exported_kwh`` and ``curtailed_kwh``.
    """
    info = results.fleet_info
    green = info.index[info["green"].astype(bool)]
    dt = results.dt_h
    v = vpp_series(results)
    produced = pd.DataFrame({f: results.fleets[(f, "p_kw")].clip(lower=0.0) for f in green}, index=results.index)
    total = produced.sum(axis=1)
    share = produced.div(total.where(total > 0), axis=0).fillna(0.0)
    storage = info.index[info["role"] == "storage"]
    charging = sum((-results.fleets[(f, "p_kw")]).clip(lower=0.0) for f in storage) if len(storage) else 0.0
    stored = np.minimum(charging, v["green_local_kw"]) if len(storage) else v["green_local_kw"] * 0.0
    rows = {}
    for f in green:
        curtailed = ((results.fleets[(f, "p_available_kw")] - results.fleets[(f, "p_kw")]).clip(lower=0.0)
                     if (f, "p_available_kw") in results.fleets.columns else 0.0 * total)
        flows = {"stored": share[f] * stored, "exported": share[f] * v["green_exported_kw"]}
        flows["used by loads"] = produced[f] - flows["stored"] - flows["exported"]
        flows["curtailed"] = curtailed
        kind = str(info.loc[f, "type"])
        row = {name: float(flows[name].sum()) * dt for name, _ in _DESTINATIONS}
        rows[kind] = {k: rows.get(kind, {}).get(k, 0.0) + x for k, x in row.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[name for name, _ in _DESTINATIONS])


def green_flows_figure(results: Results) -> go.Figure:
    """Where each source's green energy went: a Sankey diagram from the green
    source types (PV, wind, ...) to used by loads, stored, exported and
    curtailed (:func:`green_flows_kwh` says how a step's shared flows are split).

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Sankey`` trace named ``"green energy"``; link values in kWh or MWh.
    """
    flows = green_flows_kwh(results)
    if flows.empty or float(flows.to_numpy().sum()) <= 0:
        return _empty_figure("Green energy by source and destination", "no green generation in this run")
    unit = _Axis(results).unit
    sources = list(flows.index)
    dests = [name for name, _ in _DESTINATIONS]
    colors = dict(_DESTINATIONS)
    src, dst, val, col = [], [], [], []
    for i, s in enumerate(sources):
        for j, d in enumerate(dests):
            if flows.loc[s, d] > 0:
                src.append(i)
                dst.append(len(sources) + j)
                val.append(float(flows.loc[s, d]) * unit.factor)
                col.append(_rgba(colors[d], 0.45))
    available = flows.sum(axis=1)
    labels = [f"{_text(s)} {available[s] * unit.factor:,.1f} {unit.energy}" for s in sources]
    labels += [f"{d} {flows[d].sum() * unit.factor:,.1f} {unit.energy}" for d in dests]
    fig = go.Figure(go.Sankey(
        name="green energy", arrangement="snap", valueformat=",.1f", valuesuffix=f" {unit.energy}",
        node=dict(label=labels, pad=18, thickness=16,
                  color=[_OKABE_ITO["yellow"]] * len(sources) + [colors[d] for d in dests]),
        link=dict(source=src, target=dst, value=val, color=col)))
    total = float(available.sum())
    local = float(flows[["used by loads", "stored"]].to_numpy().sum())
    title = (f"Green energy by source and destination: {100 * local / total:.1f} % of "
             f"{total * unit.factor:,.1f} {unit.energy} used locally (by loads or stored)"
             "<br><sub>exported and stored green power shared among the sources by what each produced in the "
             "step</sub>")
    return _layout(fig, title, 420)
