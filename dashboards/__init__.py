"""Plotly figures and self-contained HTML reports of VPP runs.

Reads :class:`~vpp.results.Results` and KPIs only (never the engine, assets
or optimizer).  Figure functions return :class:`plotly.graph_objects.Figure`
and have no side effects; report functions return the HTML text.

>>> from vpp.dashboards import green_power_figure, run_report
>>> green_power_figure(res).show()                  # in a notebook
>>> Path("report.html").write_text(run_report(res), encoding="utf-8")
"""

from vpp.dashboards._style import HEADLINE_KPIS, KPI_LABELS, MW_THRESHOLD_KW, PowerUnit, power_unit
from vpp.dashboards.comms import comms_figure
from vpp.dashboards.comparison_figures import (
    strategy_delta_figure,
    strategy_kpi_bars_figure,
    strategy_overlay_figure,
    strategy_panels_figure,
)
from vpp.dashboards.figures import (
    baseline_overlay_figure,
    building_temperature_figure,
    green_power_figure,
    grid_exchange_figure,
    shadow_price_figure,
    slack_figure,
    solve_time_figure,
    storage_figure,
    supply_demand_figure,
)
from vpp.dashboards.flows import co2_figure, cost_figure, green_flows_figure, green_flows_kwh, money_unit
from vpp.dashboards.kpi_table import kpi_table, kpi_table_figure
from vpp.dashboards.report import comparison_report, headline, run_report
from vpp.dashboards.sweep import (
    SWEEP_KPIS,
    facet_figure,
    facet_report,
    paired_differences,
    seed_summary,
    sweep_figure,
    sweep_report,
)

__all__ = [
    "HEADLINE_KPIS",
    "KPI_LABELS",
    "MW_THRESHOLD_KW",
    "PowerUnit",
    "power_unit",
    "kpi_table",
    "headline",
    "supply_demand_figure",
    "green_power_figure",
    "green_flows_figure",
    "green_flows_kwh",
    "cost_figure",
    "co2_figure",
    "money_unit",
    "grid_exchange_figure",
    "baseline_overlay_figure",
    "kpi_table_figure",
    "storage_figure",
    "building_temperature_figure",
    "slack_figure",
    "shadow_price_figure",
    "solve_time_figure",
    "strategy_kpi_bars_figure",
    "strategy_overlay_figure",
    "strategy_delta_figure",
    "strategy_panels_figure",
    "comms_figure",
    "run_report",
    "comparison_report",
    "SWEEP_KPIS",
    "seed_summary",
    "facet_figure",
    "facet_report",
    "paired_differences",
    "sweep_figure",
    "sweep_report",
]
