"""Figures and the HTML page of a parameter sweep (``sweep.html``).

Each headline KPI against each varied parameter: the mean over seeds and its
95 % confidence interval (Student's t on the seeds' spread), one line per
strategy (and per value of the other varied parameters, when several vary).

An interval is drawn from :data:`MIN_SEEDS_FOR_CI` seeds up.  With two seeds
Student's t has one degree of freedom (t = 12.7): the interval of a share runs
far outside 0-100 % and says nothing a reader can use, so the seeds' own values
are drawn as dots instead.  CO2 is in t, as on the comparison page.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from scipy import stats

from vpp.dashboards._style import _TEMPLATE, kpi_label
from vpp.dashboards.comparison_figures import _strategy_colors
from vpp.dashboards.report import _esc, _figure, _page, _section
from vpp.kpi import COMPARISON_META, KPI_META, is_noise

__all__ = ["SWEEP_KPIS", "MIN_SEEDS_FOR_CI", "seed_summary", "paired_differences", "sweep_figure", "sweep_report",
           "facet_figure", "facet_report"]

#: KPIs a sweep's page plots, in this order (those the table has).
SWEEP_KPIS = ("green_local_consumption_rate", "curtailment_rate", "self_sufficiency", "total_cost_cny", "co2_kg",
              "peak_import_kw", "unserved_energy_kwh", "comfort_violation_kh")

_PERCENT_UNITS = ("-",)
#: Fewest seeds for which a point gets a confidence interval (fewer: its seeds as dots).
MIN_SEEDS_FOR_CI = 3


def seed_summary(table: pd.DataFrame, by: list[str], kpi: str) -> pd.DataFrame:
    """Mean of *kpi* over seeds per group of *by*, with ``n`` (seeds) and
    ``half_width`` of the 95 % confidence interval (NaN below :data:`MIN_SEEDS_FOR_CI` seeds)."""
    ok = table[table["status"] == "ok"]
    g = ok.groupby(by, dropna=False, sort=True)[kpi]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    t = np.where(out["n"] >= MIN_SEEDS_FOR_CI, stats.t.ppf(0.975, np.maximum(out["n"] - 1, 1)), np.nan)
    out["half_width"] = t * out["std"] / np.sqrt(out["n"])
    return out


def paired_differences(table: pd.DataFrame, varied: list[str], baseline: str = "source_follows_load") -> pd.DataFrame:
    """Each finished run's KPIs minus the baseline run's on the same point and seed
    (the same draws), for every other strategy: the effect of the strategy, free of
    the spread between seeds' weather."""
    ok = table[table["status"] == "ok"]
    keys = [*varied, "seed"]
    kpis = [k for k in SWEEP_KPIS if k in ok.columns]
    base = ok[ok["strategy"] == baseline].set_index(keys)[kpis]
    others = ok[ok["strategy"] != baseline]
    if base.empty or others.empty:
        return others.iloc[0:0]
    diff = others.set_index(keys)[kpis] - base.reindex(others.set_index(keys).index).to_numpy()
    out = diff.reset_index()
    out["strategy"], out["status"] = others["strategy"].to_numpy(), "ok"
    return out


def _unit(kpi: str) -> str:
    return (KPI_META.get(kpi) or COMPARISON_META.get(kpi) or ("",))[0]


def _denoised(table: pd.DataFrame, kpis) -> pd.DataFrame:
    """*table* with each KPI's values within numerical noise of zero set to zero (a run
    that served everything leaves 1e-15 kWh: drawn as "5f", it reads as a result)."""
    out = table.copy()
    for kpi in kpis:
        unit = _unit(kpi)
        values = pd.to_numeric(out[kpi], errors="coerce")
        noise = [pd.notna(v) and is_noise(v, v, 0.0, unit) for v in values]
        out[kpi] = values.where(~np.asarray(noise, dtype=bool), 0.0)
    return out


def _scale(kpi: str) -> tuple[float, str]:
    unit = _unit(kpi)
    if unit == "kg":
        return 1e-3, "t"
    return (100.0, "%") if unit in _PERCENT_UNITS else (1.0, unit)


def _seed_dots(table: pd.DataFrame, keys: dict, parameter: str, kpi: str, factor: float, colour: str,
               name: str) -> go.Scatter | None:
    """The runs' own values at the points with fewer seeds than an interval needs."""
    ok = table[table["status"] == "ok"]
    for column, value in keys.items():
        ok = ok[ok[column].isna()] if pd.isna(value) else ok[ok[column] == value]
    counts = ok.groupby(parameter)[kpi].transform("count")
    few = ok[counts < MIN_SEEDS_FOR_CI]
    if few.empty or few[kpi].isna().all():
        return None
    return go.Scatter(x=few[parameter], y=few[kpi] * factor, mode="markers", name=f"{name} (each seed)",
                      legendgroup=name, showlegend=False, opacity=0.6,
                      marker={"color": colour, "size": 6, "symbol": "circle-open"},
                      hovertemplate=f"{_esc(name)}, seed %{{customdata}}<br>%{{y:.4g}}<extra></extra>",
                      customdata=few["seed"])


def sweep_figure(table: pd.DataFrame, parameter: str, varied: list[str], kpis=SWEEP_KPIS,
                 title: str = "mean over seeds, 95 % CI", strategies: list[str] | None = None,
                 difference: bool = False) -> go.Figure:
    """The KPIs (rows) against *parameter*: mean over seeds with its 95 % interval.
    A strategy keeps its colour by its place in *strategies* (default: the table's, sorted);
    *difference*: the table holds differences (shares in percentage points)."""
    strategies = strategies or sorted(table["strategy"].unique())
    kpis = [k for k in kpis if k in table.columns and table[k].notna().any()]
    table = _denoised(table, kpis)
    ok = table[table["status"] == "ok"]
    zero = [k for k in kpis if (ok[k].fillna(0.0) == 0).all()]
    kpis = [k for k in kpis if k not in zero]
    others = [v for v in varied if v != parameter]
    def shown(kpi: str) -> str:
        unit = _scale(kpi)[1]
        return "pt" if difference and unit == "%" else unit

    fig = make_subplots(rows=max(len(kpis), 1), cols=1, shared_xaxes=True, vertical_spacing=0.3 / max(len(kpis), 1),
                        subplot_titles=[f"{kpi_label(k)} [{shown(k)}]" for k in kpis])
    by_strategy = _strategy_colors(strategies)
    for row, kpi in enumerate(kpis, start=1):
        factor, unit = _scale(kpi)[0], shown(kpi)
        s = seed_summary(table, ["strategy", *others, parameter], kpi)
        for i, (key, g) in enumerate(s.groupby(["strategy", *others], dropna=False, sort=False)):
            key = key if isinstance(key, tuple) else (key,)
            name = key[0] + "".join(f", {o}={v}" for o, v in zip(others, key[1:], strict=True))
            colour = by_strategy.get(key[0], "#444444") if not others else qualitative.Plotly[i % 10]
            fig.add_trace(go.Scatter(
                x=g[parameter], y=g["mean"] * factor, name=name, legendgroup=name, showlegend=row == 1,
                mode="lines+markers", line={"color": colour},
                error_y={"type": "data", "array": (g["half_width"] * factor).fillna(0.0), "visible": True},
                hovertemplate=f"{_esc(name)}<br>{_esc(parameter)}=%{{x}}<br>%{{y:.4g}} {unit}"
                              "<br>seeds: %{customdata}<extra></extra>",
                customdata=g["n"]), row=row, col=1)
            dots = _seed_dots(table, dict(zip(["strategy", *others], key, strict=True)), parameter, kpi, factor,
                              colour, name)
            if dots is not None:
                fig.add_trace(dots, row=row, col=1)
        fig.update_yaxes(title_text=unit, row=row, col=1)
    fig.update_xaxes(title_text=parameter, row=max(len(kpis), 1), col=1)
    note = ("<br><sub>zero in every run: " + ", ".join(kpi_label(k) for k in zero) + "</sub>") if zero else ""
    fig.update_layout(template=_TEMPLATE, height=230 * max(len(kpis), 1) + 100,
                      title=f"KPIs against {parameter} ({title}){note}",
                      legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"}, margin={"t": 130})
    return fig


def facet_figure(table: pd.DataFrame, x: str, kpi: str, rows: str | None = None, cols: str | None = None,
                 strategies: list[str] | None = None, title: str | None = None) -> go.Figure:
    """Small multiples of *kpi* against *x*: one panel per value of *rows* and of
    *cols* (each optional), one line per strategy in the same colour in every
    panel, the mean over seeds with its 95 % interval.  A study over seasons and
    settlements reads at a glance, where one plot would overlay every combination."""
    strategies = strategies or sorted(table["strategy"].unique())
    row_vals = _values(table, rows)
    col_vals = _values(table, cols)
    factor, unit = _scale(kpi)
    fig = make_subplots(rows=len(row_vals), cols=len(col_vals), shared_xaxes=True, shared_yaxes=True,
                        horizontal_spacing=0.02, vertical_spacing=0.08,
                        subplot_titles=[", ".join(str(v) for v in (r, c) if v is not None)
                                        for r in row_vals for c in col_vals])
    s = seed_summary(table, ["strategy", *(p for p in (rows, cols) if p), x], kpi)
    colours = _strategy_colors(strategies)
    dashes = {name: ("solid", "dash", "dot", "dashdot")[k % 4] for k, name in enumerate(strategies)}
    for i, r in enumerate(row_vals, start=1):
        for j, c in enumerate(col_vals, start=1):
            panel = s[_is(s, rows, r) & _is(s, cols, c)]
            for strategy, g in panel.groupby("strategy", sort=False):
                fig.add_trace(go.Scatter(
                    x=g[x], y=g["mean"] * factor, name=strategy, legendgroup=strategy,
                    showlegend=i == 1 and j == 1, mode="lines+markers",
                    line={"color": colours[strategy], "dash": dashes[strategy]},
                    error_y={"type": "data", "array": (g["half_width"] * factor).fillna(0.0), "visible": True},
                    hovertemplate=f"{_esc(strategy)}<br>{_esc(x)}=%{{x}}<br>%{{y:.4g}} {unit}"
                                  "<br>seeds: %{customdata}<extra></extra>", customdata=g["n"]), row=i, col=j)
    for i in range(1, len(row_vals) + 1):
        fig.update_yaxes(title_text=unit, row=i, col=1)
    for j in range(1, len(col_vals) + 1):
        fig.update_xaxes(title_text=x, row=len(row_vals), col=j)
    fig.update_layout(template=_TEMPLATE, height=300 * len(row_vals) + 120,
                      title=title or f"{kpi_label(kpi)} against {x} (mean over seeds, 95 % CI)",
                      margin={"t": 90})
    return fig


def facet_report(table: pd.DataFrame, x: str, kpis, rows: str | None = None, cols: str | None = None, *,
                 title: str = "Study", intro: str = "") -> str:
    """A self-contained page of :func:`facet_figure` per KPI, each followed by the
    strategies' paired differences from the baseline on the same draws."""
    varied = [p for p in (x, rows, cols) if p]
    diffs = paired_differences(table, varied)
    order = sorted(table["strategy"].unique())
    body = [f"<h1>{_esc(title)}</h1>", f"<p>{_esc(intro)}</p>" if intro else ""]
    for i, kpi in enumerate(kpis):
        parts = [_figure(facet_figure(table, x, kpi, rows, cols, order), f"facet-{i}")]
        if len(diffs) and kpi in diffs:
            parts.append(_figure(facet_figure(
                diffs, x, kpi, rows, cols, order,
                title=f"{kpi_label(kpi)}: difference from the baseline on the same draws "
                      "(mean over seeds, 95 % CI)"), f"facet-diff-{i}"))
        body.append(_section(kpi_label(kpi), *parts))
    return _page(title, body)


def _values(table: pd.DataFrame, column: str | None) -> list:
    return [None] if column is None else list(dict.fromkeys(table[column].tolist()))


def _is(frame: pd.DataFrame, column: str | None, value) -> pd.Series:
    return pd.Series(True, index=frame.index) if column is None else frame[column] == value


def _failed_html(table: pd.DataFrame, varied: list[str]) -> str:
    bad = table[table["status"] != "ok"]
    if bad.empty:
        return "<p>Every run finished.</p>"
    cols = [*varied, "seed", "strategy", "error"]
    rows = "".join("<tr>" + "".join(f"<td>{_esc(r[c])}</td>" for c in cols) + "</tr>"
                   for r in bad.to_dict("records"))
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    return f"<p>{len(bad)} run(s) failed:</p><table><tr>{head}</tr>{rows}</table>"


def sweep_report(table: pd.DataFrame, varied: list[str], *, title: str = "Parameter sweep") -> str:
    """The sweep's self-contained HTML page: a figure per varied parameter and the failed runs."""
    n_ok = int((table["status"] == "ok").sum())
    seeds = table["seed"].nunique()
    intro = (f"<p>{len(table)} runs: {n_ok} finished, {len(table) - n_ok} failed; "
             f"{table['strategy'].nunique()} strategies, {seeds} seed(s) per point. "
             "Lines are means over seeds; bars the 95 % confidence interval (Student's t) where a point has "
             f"at least {MIN_SEEDS_FOR_CI} seeds, dots each seed's value where it has fewer.</p>")
    body = [f"<h1>{_esc(title)}</h1>", intro]
    moving = [p for p in varied if table[p].astype(str).nunique() > 1]
    fixed = [p for p in varied if p not in moving]
    if fixed:
        body.append("<p>Held at one value: " + "; ".join(f"<code>{_esc(p)}</code> = {_esc(table[p].iloc[0])}"
                                                         for p in fixed) + ".</p>")
    if not moving:
        body.append("<p>Nothing varies in this sweep: see <code>sweep.parquet</code> for the seeds' KPIs.</p>")
    diffs = paired_differences(table, varied)
    order = sorted(table["strategy"].unique())
    for i, p in enumerate(moving):
        parts = [_figure(sweep_figure(table, p, moving, strategies=order), f"sweep-{i}")]
        if len(diffs):
            parts.append(_figure(sweep_figure(diffs, p, moving, strategies=order, difference=True,
                                              title="difference from the baseline on the same draws, "
                                                    "mean over seeds, 95 % CI"), f"sweep-diff-{i}"))
        body.append(_section(f"Against {p}", *parts))
    body.append(_section("Runs that failed", _failed_html(table, varied)))
    return _page(title, body)
