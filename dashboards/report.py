"""Self-contained HTML reports of one run and of a strategy comparison.

A report is one HTML string that works offline: plotly.js is embedded once,
in the page head, and every figure is a ``<div>`` drawn by it (no
``<script src=...>``, no CDN, no MathJax).  Nothing is written to disk here;
:meth:`vpp.results.Results.save` takes the string as ``report_html``.  Every
piece of text that comes from a scenario (names, event details) is escaped
with :func:`html.escape`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from vpp.dashboards._style import (
    _FRACTIONS,
    _KW,
    HEADLINE_KPIS,
    PowerUnit,
    _is_noise,
    _larger_unit,
    _near_zero,
    kpi_label,
    power_unit,
)
from vpp.dashboards.comms import comms_figure
from vpp.dashboards.comparison_figures import ComparisonLike, strategy_delta_figure, strategy_panels_figure
from vpp.dashboards.figures import (
    SHADOW_PREFIX,
    _storage_fleets,
    _thermal_fleets,
    baseline_overlay_figure,
    building_temperature_figure,
    dr_events_figure,
    green_power_figure,
    grid_exchange_figure,
    market_figure,
    shadow_price_figure,
    slack_figure,
    solve_time_figure,
    storage_figure,
    supply_demand_figure,
)
from vpp.dashboards.flows import co2_figure, cost_figure, green_flows_figure
from vpp.dashboards.kpi_table import _display_unit, _fmt, _fmt_pct, _judgement, _kpis, kpi_table
from vpp.kpi import COMPARISON_META, KPI_META
from vpp.results import Results

__all__ = ["run_report", "comparison_report", "headline", "MAX_EVENT_ROWS"]

_COMPACT_MIN_POINTS = 8

#: Rows of the event log shown in a report (the rest is counted, not listed).
MAX_EVENT_ROWS = 200

_BASELINE = "source_follows_load"  # the counterfactual strategy (vpp.api.BASELINE)

# KPIs left out of the headline words when the run and the baseline both have zero.
_ONLY_IF_NONZERO = frozenset({"ev_energy_not_served_kwh", "comfort_violation_kh"})

_PLOTLY_CONFIG = {"responsive": True, "displaylogo": False,
                  "toImageButtonOptions": {"format": "svg", "scale": 1}}

_CSS = """
body { font-family: Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1280px; margin: 0 auto; padding: 1.5em 2em 3em; background: white; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.meta { color: #555; margin-top: 0; }
ul.headline { font-size: 1.1em; line-height: 1.6; }
.good { color: #007A59; font-weight: bold; }
.bad { color: #B34700; font-weight: bold; }
.warn { background: #FFF4E0; border-left: 4px solid #E69F00; padding: 0.5em 1em; }
table.data { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
table.data th, table.data td { border-bottom: 1px solid #e3e3e3; padding: 0.25em 0.7em; text-align: right; }
table.data th { background: #f0f0f0; }
table.data td.l, table.data th.l { text-align: left; }
table.data td.good { background: #D9F0E3; font-weight: normal; color: #222; }
table.data td.bad { background: #F9DCCB; font-weight: normal; color: #222; }
table.data td.best { font-weight: bold; }
code { font-size: 0.85em; color: #666; }
footer { color: #888; font-size: 0.85em; margin-top: 3em; }
"""


# -- page assembly --------------------------------------------------------------------
def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _page(title: str, body: Iterable[str]) -> str:
    """The whole HTML document: plotly.js inlined once in the head."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "<script type=\"text/javascript\">window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head>",
        "<body><main>",
        *body,
        "<footer>Made with vpp (virtual power plant aggregation simulator); figures by plotly, "
        "drawn offline from the data embedded in this page.</footer>",
        "</main></body>",
        "</html>",
    ])


def _figure(fig: go.Figure, div_id: str) -> str:
    return pio.to_html(_compact(fig), full_html=False, include_plotlyjs=False, include_mathjax=False,
                       config=_PLOTLY_CONFIG, div_id=div_id, default_width="100%")


def _compact(fig: go.Figure) -> go.Figure:
    """A copy whose evenly spaced time axes are stored as start + step.

    A trace's ``x`` of N timestamps takes about 28 bytes each in the page;
    plotly's ``x0`` and ``dx`` (milliseconds on a date axis) draw the same
    points from two numbers.  Only regular series of at least
    :data:`_COMPACT_MIN_POINTS` are rewritten; the figure passed in is not
    changed.
    """
    out = go.Figure(fig)
    for trace in out.data:
        x = getattr(trace, "x", None)
        if trace.type != "scatter" or x is None or len(x) < _COMPACT_MIN_POINTS:
            continue
        try:
            t = pd.DatetimeIndex(x)
        except (TypeError, ValueError):
            continue
        step = np.diff(t.asi8)
        if step.size == 0 or step[0] <= 0 or not (step == step[0]).all():
            continue
        trace.update(x=None, x0=t[0], dx=(t[1] - t[0]) / pd.Timedelta(milliseconds=1))
    return out


def _section(heading: str, *parts: str) -> str:
    return "\n".join([f"<section><h2>{_esc(heading)}</h2>", *parts, "</section>"])


def _period(r: Results) -> str:
    idx = r.index
    if len(idx) == 0:
        return "no steps"
    end = idx[-1] + pd.Timedelta(hours=r.dt_h)
    tz = f" ({idx.tz})" if idx.tz is not None else ""
    step_min = r.dt_h * 60.0
    return (f"{idx[0]:%Y-%m-%d %H:%M} \u2013 {end:%Y-%m-%d %H:%M}{tz}, "
            f"{len(idx)} steps of {step_min:g} min")


# -- headline in words ----------------------------------------------------------------
def _has_baseline_values(kpis: pd.DataFrame) -> bool:
    if "baseline" not in kpis.columns or "delta" not in kpis.columns:
        return False
    base = pd.to_numeric(kpis["baseline"], errors="coerce").to_numpy(dtype=float)
    delta = pd.to_numeric(kpis["delta"], errors="coerce").to_numpy(dtype=float)
    return bool(np.isfinite(base).any() and (np.abs(delta[np.isfinite(delta)]) > 0).any())


def headline(results: Results, unit: PowerUnit | None = None) -> list[tuple[str, int]]:
    """The headline KPIs in words, with how each compares to the baseline.

    Example: ``"green power used locally: 92.1 % (baseline 85.3 %, +6.8
    points)"``.  Fractions are given in %, their change in percentage
    points; other KPIs in their unit (kW and kWh follow the run's display
    unit), their change in % of the baseline.  EV and comfort KPIs are
    left out when both the run and the baseline have zero.  The baseline is
    left out when the run is the baseline itself.

    Returns
    -------
    list of (str, int)
        Plain-text sentence and judgement (+1 better than the baseline, -1
        worse, 0 unchanged or no preferred direction).
    """
    kpis = _kpis(results)
    scale = unit or power_unit(results)
    compare = _has_baseline_values(kpis)
    out = []
    for name in HEADLINE_KPIS:
        if name not in kpis.index:
            continue
        row = kpis.loc[name]
        value, base, delta = (float(row.get(c, np.nan)) for c in ("value", "baseline", "delta"))
        unit_raw = str(row.get("unit", KPI_META[name][0]))
        if np.isfinite(delta) and _is_noise(delta, value, base, unit_raw):
            delta = 0.0                                   # floating-point noise, not a change
        nothing = _near_zero(value, unit_raw) and not (compare and not _near_zero(base, unit_raw))
        if name in _ONLY_IF_NONZERO and nothing:
            continue
        factor, shown = _display_unit(name, str(row.get("unit", KPI_META[name][0])), scale)
        label = kpi_label(name)
        if name in _FRACTIONS:
            text = f"{label}: {_fmt_pct(value * factor)} %"
            change = f"{_fmt_pct(delta * factor, signed=True)} points"
            base_text = f"{_fmt_pct(base * factor)} %"
        else:
            text = f"{label}: {_fmt(value * factor)} {shown}"
            base_text = f"{_fmt(base * factor)} {shown}"
            change = f"{_fmt(delta * factor, signed=True)} {shown}"
            if np.isfinite(base) and not _near_zero(base, unit_raw, value) and value * base > 0 and delta != 0.0:
                change += f", {100.0 * delta / abs(base):+.1f} %"  # % only of a real base, without a sign change
        judgement = 0
        if compare and np.isfinite(base):
            text += f" (baseline {base_text}, {change})" if delta != 0.0 else f" (baseline {base_text}, the same)"
            judgement = _judgement(str(row.get("better", KPI_META[name][1])), delta, value, base, unit_raw)
        out.append((text, judgement))
    return out


def _headline_html(results: Results, unit: PowerUnit) -> str:
    items = []
    for text, judgement in headline(results, unit):
        css = {1: "good", -1: "bad"}.get(judgement)
        items.append(f'<li class="{css}">{_esc(text)}</li>' if css else f"<li>{_esc(text)}</li>")
    if not items:
        return "<p>No KPIs recorded.</p>"
    return '<ul class="headline">' + "".join(items) + "</ul>"


def _no_baseline_note(results: Results) -> str:
    if results.baseline is not None or _has_baseline_values(_kpis(results)):
        return ""
    if results.strategy == _BASELINE:
        return "<p>This run is the baseline (source follows load): nothing to compare with.</p>"
    return "<p>No baseline run attached: KPIs are absolute only.</p>"


# -- tables ---------------------------------------------------------------------------
def _kpi_table_html(results: Results, unit: PowerUnit) -> str:
    t = kpi_table(results, unit)
    head = ("<tr><th class=\"l\">KPI</th><th>value</th><th>baseline</th><th>delta</th><th>delta %</th>"
            "<th class=\"l\">unit</th><th class=\"l\">meaning</th></tr>")
    rows = []
    for name, r in t.iterrows():
        css = {1: ' class="good"', -1: ' class="bad"'}.get(int(r["judgement"]), "")
        rows.append(
            f'<tr><td class="l">{_esc(r["label"])}<br><code>{_esc(name)}</code></td>'
            f"<td>{_esc(r['value'])}</td><td>{_esc(r['baseline'])}</td>"
            f"<td{css}>{_esc(r['delta'])}</td><td{css}>{_esc(r['delta_pct'])}</td>"
            f'<td class="l">{_esc(r["unit"])}</td><td class="l">{_esc(r["description"])}</td></tr>')
    return '<table class="data">' + head + "".join(rows) + "</table>"


def _fleets_html(results: Results, unit: PowerUnit) -> str:
    info = results.fleet_info
    rows = []
    for fleet, r in info.iterrows():
        rated = float(r["p_rated_kw"]) * unit.factor if "p_rated_kw" in info.columns else np.nan
        rows.append(f'<tr><td class="l">{_esc(fleet)}</td><td class="l">{_esc(r.get("type", ""))}</td>'
                    f'<td class="l">{_esc(r.get("node", ""))}</td><td class="l">{_esc(r.get("role", ""))}</td>'
                    f"<td>{_esc(r.get('count', ''))}</td><td>{_esc(_fmt(rated))}</td></tr>")
    head = (f'<tr><th class="l">fleet</th><th class="l">type</th><th class="l">node</th>'
            f'<th class="l">role</th><th>assets</th><th>rated [{unit.power}]</th></tr>')
    return '<table class="data">' + head + "".join(rows) + "</table>"


def _events_html(events: pd.DataFrame | None) -> str | None:
    if events is None or len(events) == 0:
        return None
    shown = events.head(MAX_EVENT_ROWS)
    cols = list(shown.columns)
    head = '<tr><th class="l">time</th>' + "".join(f'<th class="l">{_esc(c)}</th>' for c in cols) + "</tr>"
    rows = ["<tr><td class=\"l\">" + _esc(t) + "</td>"
            + "".join(f'<td class="l">{_esc(v)}</td>' for v in row) + "</tr>"
            for t, row in zip(shown.index, shown.itertuples(index=False), strict=True)]
    more = (f"<p>{len(events) - MAX_EVENT_ROWS} more events not listed (see the saved "
            "<code>events</code> table).</p>" if len(events) > MAX_EVENT_ROWS else "")
    return '<table class="data">' + head + "".join(rows) + "</table>" + more


def _warnings_html(results: Results, unit: PowerUnit) -> str:
    notes = []
    d = results.dispatch
    if d is not None and "fallback" in d.columns and d["fallback"].astype(bool).any():
        notes.append(f"{int(d['fallback'].astype(bool).sum())} of {len(d)} dispatch windows fell back to "
                     "the baseline strategy.")
    for q, what in (("import_violation_kw", "import"), ("export_violation_kw", "export")):
        cols = results.nodes.xs(q, axis=1, level="quantity") if q in results.nodes.columns.get_level_values(
            "quantity") else None
        if cols is not None and (cols.to_numpy(dtype=float) > 0).any():
            e = float(np.nansum(cols.to_numpy(dtype=float))) * results.dt_h * unit.factor
            notes.append(f"Node {what} limits were exceeded ({e:,.1f} {unit.energy} in total).")
    quantities = results.nodes.columns.get_level_values("quantity")
    if "shed_kw" in quantities:
        shed, unserved = (float(np.nansum(results.nodes.xs(q, axis=1, level="quantity").to_numpy(dtype=float)))
                          * results.dt_h * unit.factor for q in ("shed_kw", "unserved_kw"))
        if shed > 0:
            notes.append(f"Hard node import limits cut {shed:,.1f} {unit.energy} of load draw "
                         f"({unserved:,.1f} {unit.energy} of it fixed load, not served).")
    return "".join(f'<p class="warn">{_esc(n)}</p>' for n in notes)


# -- the reports ------------------------------------------------------------------------
def run_report(results: Results, *, title: str | None = None) -> str:
    """A self-contained HTML page reporting one run.

    Header (scenario, strategy, period, the headline KPIs in words against
    the baseline), then: where the green power went, green energy by source
    and destination, this run vs the baseline (when there is one), supply
    and demand, cost, CO2, grid exchange per node, the KPI table, storage,
    buildings and dispatch times (each when the run has them) and the event
    log.

    Parameters
    ----------
    results : Results
        A run; its ``kpis`` are used when set, else computed (against
        ``results.baseline`` when set).
    title : str, optional
        Page title; default ``"<scenario> \u2013 <strategy>"``.

    Returns
    -------
    str
        The HTML document (UTF-8 text).  plotly.js is embedded once, so the
        page works offline; it is about 4.8 MB before the data.
    """
    unit = power_unit(results)
    page_title = title or f"{results.scenario_name} \u2013 {results.strategy}"
    body = [
        f"<h1>{_esc(results.scenario_name)}</h1>",
        f'<p class="meta">strategy <b>{_esc(results.strategy)}</b> \u00b7 {_esc(_period(results))} \u00b7 '
        f"{len(results.fleet_info)} fleets at {len(results.node_info)} nodes \u00b7 settlement "
        f"{_esc(results.settlement)} \u00b7 seed {results.seed} \u00b7 vpp {_esc(results.version)}</p>",
        _warnings_html(results, unit),
        _section("Headline", _headline_html(results, unit) + _no_baseline_note(results)),
    ]
    figures: list[tuple[str, go.Figure]] = [("Where the green power went", green_power_figure(results)),
                                            ("Green energy by source and destination", green_flows_figure(results))]
    if results.baseline is not None:
        figures.append(("This strategy vs the baseline", baseline_overlay_figure(results)))
    figures += [("Supply and demand", supply_demand_figure(results)),
                ("Cost", cost_figure(results)),
                ("CO\u2082", co2_figure(results)),
                ("Grid exchange per node", grid_exchange_figure(results))]
    if "dr_events" in results.tables:
        figures.append(("Demand-response calls", dr_events_figure(results)))
    if "market" in results.tables:
        figures.append(("Day-ahead market", market_figure(results)))
    if "comms_steps" in results.tables and len(results.tables["comms_steps"]):
        figures.append(("Setpoints over the network", comms_figure(results)))
    for k, (heading, fig) in enumerate(figures):
        body.append(_section(heading, _figure(fig, f"fig-{k}")))
    body.append(_section("KPIs", _kpi_table_html(results, unit)))
    extras: list[tuple[str, go.Figure]] = []
    if _storage_fleets(results):
        extras.append(("Storage", storage_figure(results)))
    if _thermal_fleets(results):
        extras.append(("Buildings", building_temperature_figure(results)))
    if results.dispatch is not None and len(results.dispatch):
        extras.append(("Dispatch solve times", solve_time_figure(results)))
        if any(str(c).startswith("slack_") for c in results.dispatch.columns):
            extras.append(("Penalised slacks", slack_figure(results)))
        if any(str(c).startswith(SHADOW_PREFIX) for c in results.dispatch.columns):
            extras.append(("Shadow price of energy", shadow_price_figure(results)))
    for k, (heading, fig) in enumerate(extras, start=len(figures)):
        body.append(_section(heading, _figure(fig, f"fig-{k}")))
    body.append(_section("Fleets", _fleets_html(results, unit)))
    events = _events_html(results.events)
    if events:
        body.append(_section(f"Events ({len(results.events)})", events))
    return _page(page_title, body)


def _comparison_table_html(comparison: ComparisonLike, unit: PowerUnit, names: list[str]) -> str:
    table = comparison.table
    names = [n for n in names if pd.to_numeric(table[n], errors="coerce").notna().any()]   # no empty columns
    meta = {**KPI_META, **COMPARISON_META}            # the comparison's own columns too
    head = '<tr><th class="l">strategy</th>'
    for name in names:
        _, shown = _display_unit(name, meta.get(name, ("-",))[0], unit)
        label = kpi_label(name)
        head += f'<th title="{_esc(meta.get(name, ("", "", ""))[2])}">{_esc(label)} [{_esc(shown)}]</th>'
    head += "</tr>"
    best = {}
    for name in names:
        better = meta.get(name, ("", "none"))[1]
        col = pd.to_numeric(table[name], errors="coerce")
        if better in ("higher", "lower") and col.notna().any() and col.nunique() > 1:
            best[name] = col.max() if better == "higher" else col.min()
    rows = []
    for strategy, r in table.iterrows():
        cells = []
        for name in names:
            factor, _ = _display_unit(name, meta.get(name, ("-",))[0], unit)
            value = float(r[name])
            css = ' class="best"' if name in best and np.isclose(value, best[name]) else ""
            text = f"{value * factor:.1f}" if name in _FRACTIONS and np.isfinite(value) else _fmt(value * factor)
            cells.append(f"<td{css}>{_esc(text)}</td>")
        rows.append(f'<tr><td class="l">{_esc(strategy)}</td>' + "".join(cells) + "</tr>")
    return '<table class="data">' + head + "".join(rows) + "</table>"


def comparison_report(comparison: ComparisonLike, *, title: str | None = None) -> str:
    """A self-contained HTML page comparing strategies on one scenario.

    Header (scenario, strategies, period), the KPI table with one row per
    strategy (headline KPIs; best value in bold; all KPIs below; columns
    without a value left out), each strategy's difference to the baseline as
    diverging bars (:func:`strategy_delta_figure`), and small multiples of
    green power used locally and net import per strategy against the
    baseline (:func:`strategy_panels_figure`).

    Parameters
    ----------
    comparison : vpp.api.Comparison or alike
        Needs ``table`` (one row per strategy, one column per KPI) and
        ``results`` (strategy name to Results).
    title : str, optional
        Page title; default ``"<scenario> \u2013 strategy comparison"``.

    Returns
    -------
    str
        The HTML document; plotly.js embedded once (works offline).
    """
    runs = comparison.results
    first = next(iter(runs.values()), None)
    scenario = first.scenario_name if first is not None else "comparison"
    unit = _larger_unit(*runs.values()) if runs else _KW
    table = comparison.table
    head_names = [k for k in HEADLINE_KPIS if k in table.columns] + [k for k in COMPARISON_META
                                                                     if k in table.columns]
    rest = [k for k in table.columns if k not in head_names]
    body = [
        f"<h1>{_esc(scenario)}: strategy comparison</h1>",
        f'<p class="meta">strategies: {", ".join(f"<b>{_esc(s)}</b>" for s in table.index)}'
        + (f" \u00b7 {_esc(_period(first))}" if first is not None else "") + "</p>",
        _section("Headline KPIs per strategy",
                 "<p>Best value per column in bold; fractions in %.</p>",
                 _comparison_table_html(comparison, unit, head_names),
                 "<details><summary>All KPIs</summary>"
                 + _comparison_table_html(comparison, unit, rest) + "</details>" if rest else ""),
        _section("Differences to the baseline", _figure(strategy_delta_figure(comparison), "fig-0")),
        _section("Over time", _figure(strategy_panels_figure(comparison), "fig-1")),
    ]
    return _page(title or f"{scenario} \u2013 strategy comparison", body)
