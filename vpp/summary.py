"""Short text and HTML summaries of runs, comparisons and sweeps, for notebooks and the shell.

``repr(results)`` is one line (scenario, strategy, period, size and two
headline KPIs); a notebook shows ``_repr_html_``: the same header and the
headline KPIs against the baseline in a small table.  The full report is
:func:`vpp.dashboards.run_report`.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from vpp.kpi import HEADLINE_KPIS, KPI_META, compute_kpis, is_noise

__all__ = ["results_repr", "results_html", "comparison_repr", "comparison_html", "sweep_repr", "sweep_html",
           "format_kpi"]

_ROW_LIMIT = 12        # rows of a sweep table shown in a notebook


def format_kpi(name: str, value: float) -> str:
    """A KPI's value with its unit, scaled for reading (%, M CNY, t, MW, MWh)."""
    unit = KPI_META.get(name, ("-",))[0]
    if value is None or not np.isfinite(value):
        return "n/a"
    if unit == "-":
        return f"{100.0 * value:.1f} %" if name.endswith(("_rate", "_frac", "sufficiency", "load_factor")) \
            else f"{value:.3g}"
    scaled = {"CNY": [(1e6, "M CNY"), (1e3, "k CNY")], "kg": [(1e3, "t")], "kW": [(1e4, "MW")],
              "kWh": [(1e4, "MWh")], "kW/h": [(1e4, "MW/h")]}
    factor, shown = 1.0, unit
    for threshold, label in scaled.get(unit, []):
        if unit == "kg" or abs(value) >= threshold:
            factor, shown = (1e-6 if label == "M CNY" else 1e-3), label
            break
    v = value * factor
    return f"{v:,.0f} {shown}" if abs(v) >= 1000 else f"{v:,.3g} {shown}"


def _kpi_values(results) -> pd.DataFrame | None:
    if results.kpis is not None:
        return results.kpis
    try:
        return pd.DataFrame({"value": compute_kpis(results)})
    except (KeyError, ValueError, IndexError):        # a hand-made or partial Results
        return None


def _period(results) -> str:
    idx = results.index
    if not len(idx):
        return "no steps"
    end = idx[-1] + pd.Timedelta(hours=results.dt_h)
    return f"{idx[0]:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}, {len(idx)} steps of {60 * results.dt_h:g} min"


def _header(results) -> str:
    return (f"{results.scenario_name} / {results.strategy}: {_period(results)}, {len(results.fleet_info)} fleets "
            f"at {len(results.node_info)} nodes, settlement {results.settlement}, seed {results.seed}")


def results_repr(results) -> str:
    """One line: scenario, strategy, period, size, local green use and total cost."""
    k = _kpi_values(results)
    parts = []
    if k is not None:
        for name in ("green_local_consumption_rate", "total_cost_cny"):
            if name in k.index:
                row = k.loc[name]
                text = f"{name} {format_kpi(name, float(row['value']))}"
                if "baseline" in row and np.isfinite(float(row["baseline"])):
                    text += f" (baseline {format_kpi(name, float(row['baseline']))})"
                parts.append(text)
    return f"<Results {_header(results)}" + ("; " + "; ".join(parts) if parts else "") + ">"


def results_html(results) -> str:
    """The header and the headline KPIs (value, baseline, difference) as a small HTML table."""
    k = _kpi_values(results)
    out = [f"<p><b>{html.escape(results.scenario_name)}</b> / <b>{html.escape(results.strategy)}</b>: "
           f"{html.escape(_header(results).split(': ', 1)[1])}</p>"]
    if k is not None:
        has_base = "baseline" in k.columns and k["baseline"].notna().any()
        head = "<tr><th>KPI</th><th>value</th>" + ("<th>baseline</th><th>difference</th>" if has_base else "") + "</tr>"
        rows = []
        for name in HEADLINE_KPIS:
            if name not in k.index:
                continue
            v = float(k.loc[name, "value"])
            cells = f"<td>{html.escape(name)}</td><td>{html.escape(format_kpi(name, v))}</td>"
            if has_base:
                b = float(k.loc[name, "baseline"])
                cells += f"<td>{html.escape(format_kpi(name, b))}</td><td>{html.escape(_difference(name, v, b))}</td>"
            rows.append(f"<tr>{cells}</tr>")
        out.append("<table>" + head + "".join(rows) + "</table>")
    return "<div>" + "".join(out) + "</div>"


def _difference(name: str, value: float, base: float) -> str:
    d = value - base
    if not np.isfinite(d):
        return "n/a"
    if is_noise(d, value, base, KPI_META.get(name, ("-",))[0]):
        return "the same"
    if KPI_META.get(name, ("-",))[0] == "-":
        return f"{100.0 * d:+.1f} pt"
    return ("+" if d > 0 else "\u2212") + format_kpi(name, abs(d))


def comparison_repr(comparison) -> str:
    names = ", ".join(map(str, comparison.table.index))
    first = next(iter(comparison.results.values()), None)
    where = f"{first.scenario_name}: {_period(first)}" if first is not None else "no runs"
    return f"<Comparison of {len(comparison.table)} strategies ({names}) on {where}>"


def comparison_html(comparison) -> str:
    """The headline KPIs, one row per strategy."""
    cols = [k for k in HEADLINE_KPIS if k in comparison.table.columns]
    head = "<tr><th>strategy</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
    rows = ["<tr><td>" + html.escape(str(s)) + "</td>"
            + "".join(f"<td>{html.escape(format_kpi(c, float(r[c])))}</td>" for c in cols) + "</tr>"
            for s, r in comparison.table.iterrows()]
    return f"<div><p>{html.escape(comparison_repr(comparison))}</p><table>{head}{''.join(rows)}</table></div>"


def sweep_repr(sweep) -> str:
    t = sweep.table
    failed = int((t["status"] != "ok").sum()) if "status" in t else 0
    return (f"<SweepResult {len(t)} runs ({sweep.computed} computed, {sweep.skipped} found done, {failed} failed) "
            f"varying {', '.join(sweep.varied) or 'nothing'}; in {sweep.folder}>")


def sweep_html(sweep) -> str:
    """The header and the first rows of the table (varied values, seed, strategy, headline KPIs)."""
    t = sweep.table
    cols = [c for c in [*sweep.varied, "seed", "strategy", "status", *HEADLINE_KPIS[:4]] if c in t.columns]
    shown = t[cols].head(_ROW_LIMIT)
    body = shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="n/a", border=0)
    more = f"<p>... {len(t) - _ROW_LIMIT} more rows in <code>.table</code></p>" if len(t) > _ROW_LIMIT else ""
    return f"<div><p>{html.escape(sweep_repr(sweep))}</p>{body}{more}</div>"
