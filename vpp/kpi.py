"""Key performance indicators of a run, absolute and relative to the baseline.

Definitions (``docs/SOURCES.md``; all energies over the simulated period):

* green-power local consumption rate = local green energy used locally /
  local green energy available before curtailment (self-consumption);
* self-sufficiency = local green energy used locally / local consumption
  (loads, not storage);
* curtailment rate = curtailed / available;
* peak-valley rate = (P_max - P_min) / P_max and load factor = P_mean / P_max
  of the VPP's net import.

Green energy is "used locally" unless it leaves the VPP: in each step the
VPP's settled export is attributed to green generation first (it is the
surplus), so ``local = green - min(green, export)``.  With ``settlement =
"vpp"`` nodes net against each other (the VPP is one balancing account);
with ``"node"`` each node's export counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vpp.market import market_steps
from vpp.results import Results
from vpp.timeline import calendar_months

__all__ = ["HEADLINE_KPIS", "KPI_META", "COMPARISON_META", "vpp_series", "net_import_kw", "service_series",
           "cost_series", "compute_kpis", "relative_kpis", "is_noise", "near_zero", "NOISE_REL", "NOISE_ABS"]

#: KPIs shown first (tables, notebook summaries) and in words (report headers).
HEADLINE_KPIS = (
    "green_local_consumption_rate",
    "curtailment_rate",
    "self_sufficiency",
    "total_cost_cny",
    "co2_kg",
    "peak_import_kw",
    "ev_energy_not_served_kwh",
    "comfort_violation_kh",
)

NOISE_REL = 1e-9  # a difference below this share of the values is numerical noise, not a change ...
NOISE_ABS = 1e-6  # ... or below this in the KPI's own unit (kWh, kW, CNY, kg, K h); NOISE_REL for fractions


def is_noise(delta: float, value: float, base: float, unit: str = "") -> bool:
    """Whether a difference between two KPI values is numerical noise rather than a
    change: below ``NOISE_REL`` of the values or ``NOISE_ABS`` of the unit (solver
    tolerances leave 1e-13 kWh where two runs did the same).  The one rule of the
    reports and the notebook summaries."""
    floor = NOISE_REL if unit in ("-", "") else NOISE_ABS
    return bool(abs(delta) <= max(NOISE_REL * max(abs(value), abs(base)), floor))


def near_zero(base: float, unit: str = "", value: float = 0.0) -> bool:
    """Whether a baseline is too close to zero for a percentage of it to mean anything:
    within noise of zero, or under 1/20 of the value it is compared with (a change of
    8,994 % says less than the two numbers beside it)."""
    return bool(abs(base) <= (NOISE_REL if unit in ("-", "") else NOISE_ABS) or abs(base) < abs(value) / 20.0)


# name: (unit, better, description)
KPI_META = {
    "green_local_consumption_rate": ("-", "higher", "Local green energy used locally / available before curtailment"),
    "self_sufficiency": ("-", "higher", "Local green energy used locally / local consumption"),
    "curtailment_rate": ("-", "lower", "Curtailed green energy / available green energy"),
    "green_available_kwh": ("kWh", "none", "Green energy available before curtailment"),
    "green_generated_kwh": ("kWh", "higher", "Green energy generated after curtailment"),
    "green_local_kwh": ("kWh", "higher", "Green energy used inside the VPP"),
    "green_exported_kwh": ("kWh", "lower", "Green energy exported from the VPP"),
    "curtailed_kwh": ("kWh", "lower", "Green energy curtailed"),
    "consumption_kwh": ("kWh", "none", "Energy consumed by loads (storage excluded)"),
    "grid_import_kwh": ("kWh", "lower", "Settled import from the upstream grid"),
    "grid_export_kwh": ("kWh", "none", "Settled export to the upstream grid"),
    "peak_import_kw": ("kW", "lower", "Highest settled import (VPP net, or all nodes' imports together)"),
    "peak_valley_difference_kw": ("kW", "lower", "Highest minus lowest net import"),
    "peak_valley_rate": ("-", "lower", "(P_max - P_min) / P_max of net import (n/a for a net exporter)"),
    "load_factor": ("-", "higher", "Mean / highest net import (n/a for a net exporter)"),
    "ramp_max_kw_per_h": ("kW/h", "lower", "Largest step-to-step change of net import, per hour"),
    "ramp_mean_kw_per_h": ("kW/h", "lower", "Mean absolute change of net import, per hour"),
    "energy_cost_cny": ("CNY", "lower", "Import energy charges (time-of-use tariff)"),
    "export_revenue_cny": ("CNY", "none", "Revenue from exported energy"),
    "demand_charge_cny": ("CNY", "lower", "Maximum-demand charge on each calendar month's peak, a part month "
                          "pro rata"),
    "total_cost_cny": ("CNY", "lower", "Energy cost - export revenue + demand charge - DR payments + DR penalties "
                       "(negative: net revenue)"),
    "co2_kg": ("kg", "lower", "CO2 of imported electricity"),
    "ev_energy_requested_kwh": ("kWh", "none", "Energy requested by departed EV sessions (cars that plugged in)"),
    "ev_energy_not_served_kwh": ("kWh", "lower", "Requested EV energy not delivered by departure (plugged cars)"),
    "ev_departures_met_frac": ("-", "higher", "Share of departed, plugged EV sessions that got their energy"),
    "ev_energy_pending_kwh": ("kWh", "none", "Requested energy of cars still plugged in at the end (end effect)"),
    "ev_turned_away_frac": ("-", "lower", "Share of arriving cars that found every charger busy and left"),
    "process_energy_not_served_kwh": ("kWh", "lower", "Industrial batch energy not delivered by its deadline"),
    "production_lost_kwh": ("kWh", "lower", "Industrial base load not drawn while sites were down in outages "
                            "(production lost, not deferred)"),
    "jobs_on_time_frac": ("-", "higher", "Share of due data-centre batch jobs finished by their deadline"),
    "comfort_violation_kh": ("K h", "lower", "Occupied-hours temperature outside the comfort band"),
    "comfort_too_hot_kh": ("K h", "lower", "Occupied-hours temperature above the comfort band"),
    "comfort_too_cold_kh": ("K h", "lower", "Occupied-hours temperature below the comfort band"),
    "ac_band_excess_kh": ("K h", "lower", "Room temperature beyond residential air conditioners' deadbands, "
                          "summed over rooms (a breaker, an outage or weather they cannot hold)"),
    "battery_cycles": ("-", "none", "Equivalent full cycles of stationary storage"),
    "storage_energy_change_kwh": ("kWh", "none", "Stored energy at the end minus at the start (end effect)"),
    "forecast_persistence_frac": ("-", "lower",
                                  "Dispatches planned on persistence while the weather forecast feed was down"),
    "outage_asset_h": ("h", "none", "Asset-hours down in outages drawn by [outages] (within the run)"),
    "setpoint_error_kwh": ("kWh", "lower", "Energy between the setpoints sent and the power the assets delivered for "
                           "them, row by row (network faults, guards, breakers, outages; sources' caps left out)"),
    "comms_messages_sent": ("-", "none", "Setpoint messages sent to assets over the [comms] network"),
    "comms_lost_frac": ("-", "lower", "Setpoint messages lost / sent"),
    "comms_late_frac": ("-", "lower", "Setpoint messages arriving after the step they were sent for / sent"),
    "comms_held_frac": ("-", "lower", "Controlled asset-steps holding an old setpoint (its message late or lost)"),
    "comms_fallback_frac": ("-", "lower",
                            "Controlled asset-steps on the baseline after a silence longer than the timeout"),
    "market_day_ahead_cny": ("CNY", "none", "Two-settlement market: the day-ahead position at day-ahead prices"),
    "market_real_time_cny": ("CNY", "none", "Two-settlement market: deviations from the position at real-time prices"),
    "market_penalty_cny": ("CNY", "lower", "Two-settlement market: penalty on deviations beyond the tolerance band"),
    "market_deviation_kwh": ("kWh", "lower", "Two-settlement market: metered net import minus position, absolute"),
    "dr_payment_cny": ("CNY", "higher", "Demand-response payments, as settled against each call's baseline"),
    "dr_penalty_cny": ("CNY", "lower", "Demand-response penalties for delivery below the floor"),
    "dr_delivered_kwh": ("kWh", "higher", "Demand-response delivery as settled: baseline - metered, "
                         "reversed for valley filling"),
    "dr_true_delivered_kwh": ("kWh", "higher",
                              "Demand-response delivery against the true counterfactual (dr.counterfactual)"),
    "dr_delivered_ratio": ("-", "higher", "Settled delivery / bid energy, mean over calls"),
    "dr_green_absorbed_kwh": ("kWh", "higher", "Local green energy used in call windows beyond the counterfactual"),
    "dr_comfort_cost_kh": ("K h", "lower", "Comfort violation around calls beyond the counterfactual's"),
    "dr_service_cost_kwh": ("kWh", "lower", "EV, batch and cut energy not served around calls beyond the "
                            "counterfactual's"),
    "import_violation_kwh": ("kWh", "lower", "Import beyond node limits (soft limits only)"),
    "load_shed_kwh": ("kWh", "lower", "Load draw cut by hard node import limits (flexible and fixed)"),
    "load_unserved_kwh": ("kWh", "lower", "Fixed load cut by hard node import limits: energy not served"),
    "export_violation_kwh": ("kWh", "lower", "Export beyond node limits"),
    "vpp_limit_violation_kwh": ("kWh", "lower", "VPP net exchange beyond the [grid] limits"),
    "ramp_limit_violation_kwh": ("kWh", "lower",
                                 "Change of net import beyond the [grid] ramp limit, summed over steps x step"),
    "ramp_limit_violation_max_kw_per_h": ("kW/h", "lower", "Largest ramp of net import beyond the [grid] ramp limit"),
    "solve_time_s": ("s", "lower", "Strategy time: model build + solve, all windows"),
    "n_fallbacks": ("-", "lower", "Dispatch windows that fell back to the baseline"),
}

# Columns a comparison adds to its table (vpp.api.compare): name: (unit, better, description)
COMPARISON_META = {
    "optimality_gap_frac": ("-", "lower", "Total cost above the centralised optimum of the same run, / |that cost|"),
    "flexibility_captured_frac": ("-", "higher", "Share of the centralised optimum's saving over the baseline"),
    "unserved_energy_kwh": ("kWh", "lower", "EV, industrial-batch and breaker-cut fixed-load energy not served"),
    "value_of_perfect_information_cny": ("CNY", "none", "Cost minus the same strategy's cost with perfect forecasts"),
    "cost_of_faults_cny": ("CNY", "none", "Cost minus the same strategy's cost on a perfect network ([comms])"),
}

EV_MET_TOL_KWH = 1e-6


def _sum_where(r: Results, quantity: str, mask) -> pd.Series:
    names = r.fleet_info.index[mask]
    if len(names) == 0:
        return pd.Series(0.0, index=r.index)
    return r.fleets.loc[:, (list(names), quantity)].sum(axis=1)


_MARKET_ITEMS = ("day_ahead_cny", "real_time_cny", "penalty_cny", "deviation_kwh")


def _market_steps(r: Results) -> dict[str, np.ndarray] | None:
    """Each step's two-settlement items from ``tables["market"]`` (None under a tariff)."""
    t = r.tables.get("market")
    if t is None or t.empty:
        return None
    return market_steps(t["position_kw"].to_numpy(), t["metered_kw"].to_numpy(), t["da_cny_per_kwh"].to_numpy(),
                        t["rt_cny_per_kwh"].to_numpy(), r.dt_h, float(t["tolerance_frac"].iloc[0]),
                        float(t["penalty_cny_per_kwh"].iloc[0]))


def _market(steps: dict[str, np.ndarray] | None) -> dict[str, float]:
    """Two-settlement KPIs from a run's :func:`_market_steps` (zeros under a tariff)."""
    return {f"market_{k}": float(steps[k].sum()) if steps is not None else 0.0 for k in _MARKET_ITEMS}


def _comms(r: Results) -> dict[str, float]:
    """Network KPIs from ``tables["comms"]`` (zero sent, NaN shares, without ``[comms]``)."""
    t = r.tables.get("comms")
    sent = float(t["messages_sent"].sum()) if t is not None else 0.0
    steps = float(t[["row_steps_applied", "row_steps_held", "row_steps_fallback"]].to_numpy().sum()) \
        if t is not None else 0.0
    return {"comms_messages_sent": sent,
            "comms_lost_frac": _ratio(float(t["messages_lost"].sum()), sent) if sent else float("nan"),
            "comms_late_frac": _ratio(float(t["messages_late"].sum()), sent) if sent else float("nan"),
            "comms_held_frac": _ratio(float(t["row_steps_held"].sum()), steps) if steps else float("nan"),
            "comms_fallback_frac": _ratio(float(t["row_steps_fallback"].sum()), steps) if steps else float("nan")}


def _setpoint_error_kwh(r: Results) -> float:
    """Setpoints sent against power delivered, summed row by row (0 where nothing was sent)."""
    t = r.tables.get("setpoints")
    return float(t["error_kwh"].sum()) if t is not None and len(t) else 0.0


def _outages(r: Results) -> dict[str, float]:
    """Asset-hours down in [outages] within the run (0 without outages)."""
    t = r.tables.get("outages")
    if t is None or t.empty or not len(r.index):
        return {"outage_asset_h": 0.0}
    end = r.index[-1] + pd.Timedelta(hours=r.dt_h)
    hours = (pd.to_datetime(t["end"]).clip(upper=end) - pd.to_datetime(t["start"])) / pd.Timedelta(hours=1)
    return {"outage_asset_h": float(hours.clip(lower=0.0).sum())}


def _forecast_dropouts(r: Results) -> dict[str, float]:
    """The share of dispatches planned while the forecast feed was down (0 without dropouts)."""
    n = len(r.dispatch)
    down = int((r.events["kind"] == "forecast_dropout").sum()) if len(r.events) else 0
    return {"forecast_persistence_frac": down / n if n else 0.0}


def _dr(r: Results) -> dict[str, float]:
    """Demand-response KPIs from ``tables["dr_events"]`` (zeros, and NaN ratio, without calls)."""
    t = r.tables.get("dr_events")
    against = {"dr_true_delivered_kwh": "true_delivered_kwh", "dr_green_absorbed_kwh": "green_absorbed_kwh",
               "dr_comfort_cost_kh": "comfort_cost_kh", "dr_service_cost_kwh": "service_cost_kwh"}
    if t is None or t.empty:
        return {"dr_payment_cny": 0.0, "dr_penalty_cny": 0.0, "dr_delivered_kwh": 0.0,
                "dr_delivered_ratio": float("nan")} | dict.fromkeys(against, 0.0)
    return {"dr_payment_cny": float(t["payment_cny"].sum()), "dr_penalty_cny": float(t["penalty_cny"].sum()),
            "dr_delivered_kwh": float(t["delivered_kwh"].sum()),
            "dr_delivered_ratio": float(t["delivered_ratio"].mean())} | {
        kpi: float(t[column].sum()) if column in t else float("nan") for kpi, column in against.items()}


def _per_step_sum(frame: pd.DataFrame, quantity: str) -> pd.Series:
    """A quantity of a fleets or nodes frame summed over its fleets or nodes, per step;
    0 where no column records it (e.g. results saved before breakers were recorded)."""
    if quantity not in frame.columns.get_level_values("quantity"):
        return pd.Series(0.0, index=frame.index)
    return frame.xs(quantity, axis=1, level="quantity").sum(axis=1)


def _node_total(nodes: pd.DataFrame, quantity: str) -> float:
    """Sum of a node quantity over nodes and steps. [kW steps]"""
    return float(_per_step_sum(nodes, quantity).sum())


def net_import_kw(r: Results) -> pd.Series:
    """The VPP's metered net import per step: every node's import less its export. [kW]"""
    n = r.nodes
    return (n.xs("grid_import_kw", axis=1, level="quantity").sum(axis=1)
            - n.xs("grid_export_kw", axis=1, level="quantity").sum(axis=1))


def vpp_series(r: Results) -> pd.DataFrame:
    """VPP-level per-step series [kW] used by KPIs and reports.

    Columns: green_available_kw, green_kw, curtailed_kw, green_exported_kw,
    green_local_kw, load_kw (consumption, positive), storage_kw (discharge
    positive), net_import_kw, import_kw, export_kw (settled).
    """
    info = r.fleet_info
    green = info["green"].astype(bool).to_numpy()
    curt = info["curtailable"].astype(bool).to_numpy()
    green_kw = _sum_where(r, "p_kw", green)
    avail = _sum_where(r, "p_available_kw", green & curt) + _sum_where(r, "p_kw", green & ~curt)
    load = -_sum_where(r, "p_kw", (info["role"] == "load").to_numpy())
    storage = _sum_where(r, "p_kw", (info["role"] == "storage").to_numpy())
    node_imp, node_exp = (r.nodes.xs(q, axis=1, level="quantity") for q in ("grid_import_kw", "grid_export_kw"))
    net = net_import_kw(r)
    if r.settlement == "vpp":
        imp, exp = net.clip(lower=0.0), (-net).clip(lower=0.0)
    else:
        imp, exp = node_imp.sum(axis=1), node_exp.sum(axis=1)
    green_exported = np.minimum(green_kw, exp)
    return pd.DataFrame({
        "green_available_kw": avail, "green_kw": green_kw, "curtailed_kw": avail - green_kw,
        "green_exported_kw": green_exported, "green_local_kw": green_kw - green_exported,
        "load_kw": load, "storage_kw": storage, "net_import_kw": net, "import_kw": imp, "export_kw": exp,
    }, index=r.index)


def service_series(r: Results) -> pd.DataFrame:
    """Per-step service the run fell short on: ``comfort_violation_kh`` [K h]
    (occupied hours outside the comfort band, over fleets) and ``unserved_kwh``
    [kWh] (EV energy short at departures, batch energy short at deadlines, load
    cut by a breaker), each step's own."""
    f = r.fleets
    return pd.DataFrame({
        "comfort_violation_kh": _per_step_sum(f, "comfort_violation_kh"),
        "unserved_kwh": _per_step_sum(f, "ev_energy_unserved_kwh") + _per_step_sum(f, "batch_energy_unserved_kwh")
        + _per_step_sum(r.nodes, "unserved_kw") * r.dt_h}, index=r.index)


def cost_series(r: Results) -> pd.DataFrame:
    """Each step's own share of the run's cost [CNY] and CO2 [kg]; each column sums to its KPI.

    Columns:

    * ``energy_cny``: the settled import at the import price; in a run on the
      day-ahead market, the market's day-ahead, real-time and penalty items
      instead (the market replaces the tariff, as in the KPIs).
    * ``export_revenue_cny``: the settled export at the export price (none on the market).
    * ``demand_charge_cny``: the monthly demand charge as it accrues: a step
      that raises its calendar month's billed peak so far adds
      ``rate x share of the month covered x the rise`` (the VPP's import, or
      each node's under node settlement), so the running sum is the bill of
      the peaks set so far -- what the optimiser sees as the peak so far.
    * ``dr_net_cny``: demand-response penalties less payments, at each call's last step.
    * ``total_cny``: energy - export revenue + demand charge + DR net (``total_cost_cny``).
    * ``co2_kg``: the settled import times the carbon intensity (``co2_kg``).
    """
    return _cost_frame(r, vpp_series(r), _market_steps(r))


def _cost_frame(r: Results, v: pd.DataFrame, market: dict[str, np.ndarray] | None) -> pd.DataFrame:
    """:func:`cost_series` from the run's :func:`vpp_series` *v* and :func:`_market_steps`."""
    x, dt = r.exogenous, r.dt_h
    energy = v["import_kw"] * x["price_import_cny_per_kwh"] * dt
    revenue = v["export_kw"] * x["price_export_cny_per_kwh"] * dt
    if market is not None and (market["day_ahead_cny"].any() or market["real_time_cny"].any()):
        energy = pd.Series(market["day_ahead_cny"] + market["real_time_cny"] + market["penalty_cny"], index=r.index)
        revenue = pd.Series(0.0, index=r.index)
    demand = _demand_charge_steps(r, v)
    dr = _dr_steps(r)
    return pd.DataFrame({"energy_cny": energy, "export_revenue_cny": revenue, "demand_charge_cny": demand,
                         "dr_net_cny": dr, "total_cny": energy - revenue + demand + dr,
                         "co2_kg": v["import_kw"] * x["co2_kg_per_kwh"] * dt}, index=r.index)


def _demand_charge_steps(r: Results, v: pd.DataFrame) -> pd.Series:
    """The demand charge as each step raises its month's billed peak so far. [CNY]"""
    month, share = calendar_months(r.index, r.dt_h)
    imports = v[["import_kw"]] if r.settlement == "vpp" else r.nodes.xs("grid_import_kw", axis=1, level="quantity")
    running = imports.clip(lower=0.0).groupby(month).cummax()
    rise = running.groupby(month).diff().fillna(running).sum(axis=1).to_numpy()
    return pd.Series(r.demand_charge_cny_per_kw_month * share[month] * rise, index=r.index)


def _dr_steps(r: Results) -> pd.Series:
    """Demand-response penalties less payments, at the last step of each call. [CNY]"""
    out = pd.Series(0.0, index=r.index)
    t = r.tables.get("dr_events")
    if t is None or t.empty:
        return out
    for end, net in zip(pd.to_datetime(t["end"]), t["penalty_cny"] - t["payment_cny"], strict=True):
        k = min(max(int(r.index.searchsorted(end, side="left")) - 1, 0), len(r.index) - 1)
        out.iloc[k] += float(net)
    return out


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def _ev(r: Results) -> dict:
    """EV service: cars that were plugged in (turned-away cars are counted apart)."""
    s = r.tables.get("ev_sessions")
    if s is None or s.empty:
        return {"ev_energy_requested_kwh": 0.0, "ev_energy_not_served_kwh": 0.0,
                "ev_departures_met_frac": float("nan"), "ev_energy_pending_kwh": 0.0,
                "ev_turned_away_frac": float("nan")}
    balked = s["balked"].astype(bool) if "balked" in s.columns else pd.Series(False, index=s.index)
    departed = s["departed"].astype(bool) & ~balked
    done = s[departed & (s["requested_kwh"] > 0)]
    unserved = (done["requested_kwh"] - done["delivered_kwh"]).clip(lower=0.0)
    open_ = s[~s["departed"].astype(bool)]
    return {"ev_energy_requested_kwh": float(done["requested_kwh"].sum()),
            "ev_energy_not_served_kwh": float(unserved.sum()),
            "ev_departures_met_frac": float((unserved <= EV_MET_TOL_KWH).mean()) if len(done) else float("nan"),
            "ev_energy_pending_kwh": float((open_["requested_kwh"] - open_["delivered_kwh"]).clip(lower=0.0).sum()),
            "ev_turned_away_frac": float(balked.mean())}


def _processes(r: Results) -> dict:
    """Service KPIs of deferrable work: industrial batches and data-centre jobs."""
    batches = r.tables.get("industry_batches")
    not_served = 0.0
    if batches is not None and len(batches):
        not_served = float(batches.loc[batches["due"].astype(bool), "unserved_kwh"].fillna(0.0).sum())
    jobs = r.tables.get("datacentre_jobs")
    on_time = float("nan")
    if jobs is not None and len(jobs):
        known = jobs["on_time"].dropna()
        on_time = float(known.astype(bool).mean()) if len(known) else float("nan")
    return {"process_energy_not_served_kwh": not_served, "jobs_on_time_frac": on_time}


def _storage_change_kwh(r: Results) -> float:
    """Energy stored at the end minus at the start, over storage fleets."""
    info = r.fleet_info
    total = 0.0
    for name in info.index[info["role"] == "storage"]:
        if (name, "e_kwh") in r.fleets.columns and "e_init_kwh" in info.columns:
            total += float(r.fleets[(name, "e_kwh")].iloc[-1]) - float(info.loc[name, "e_init_kwh"])
    return total


def _vpp_violation_kwh(r: Results, v: pd.DataFrame) -> float:
    """Net exchange beyond the VPP-level limits of the resolved scenario's [grid] section."""
    imp_lim, exp_lim = r.vpp_limits_kw
    net = v["net_import_kw"]
    over = (net - imp_lim).clip(lower=0.0) + (-net - exp_lim).clip(lower=0.0)
    return float(over.sum() * r.dt_h)


def _ramp_violation(r: Results, v: pd.DataFrame) -> tuple[float, float]:
    """Ramps of net import beyond the [grid] ramp limit ``R``: per step the change
    beyond ``R dt`` [kW], summed times ``dt`` [kWh], and the largest excess rate [kW/h].
    Same measure as the optimizer's ramp slack (``slack_ramp_kwh``)."""
    step = v["net_import_kw"].diff().abs().dropna()
    excess = (step - r.ramp_limit_kw_per_h * r.dt_h).clip(lower=0.0)
    if not len(excess) or not np.isfinite(r.ramp_limit_kw_per_h):
        return 0.0, 0.0
    return float(excess.sum() * r.dt_h), float(excess.max() / r.dt_h)


def _total(r: Results, quantity: str) -> float:
    """Sum of a state quantity over all fleets that record it and all steps."""
    return float(_per_step_sum(r.fleets, quantity).sum())


def compute_kpis(r: Results) -> pd.Series:
    """All KPIs of one run (see :data:`KPI_META` for units and meanings)."""
    v = vpp_series(r)
    dt = r.dt_h
    ramp_kwh, ramp_max = _ramp_violation(r, v)
    e = (v * dt).sum()
    net = v["net_import_kw"]
    p_max, p_min = float(net.max()), float(net.min())
    importer = float(net.mean()) > 0       # load-shape KPIs only mean something for a net importer
    ramps = net.diff().abs().dropna() / dt if dt else pd.Series(dtype=float)
    settled = _market_steps(r)
    money = _cost_frame(r, v, settled).sum()
    energy_cost, revenue, demand = money["energy_cny"], money["export_revenue_cny"], money["demand_charge_cny"]
    market = _market(settled)
    storage = r.fleet_info["role"] == "storage"
    capacity = float(r.fleet_info.loc[storage, "capacity_kwh"].sum()) if "capacity_kwh" in r.fleet_info else 0.0
    discharged = float(v["storage_kw"].clip(lower=0.0).sum() * dt)
    nodes = r.nodes
    dr = _dr(r)
    k = {
        "green_local_consumption_rate": _ratio(e["green_local_kw"], e["green_available_kw"]),
        "self_sufficiency": _ratio(e["green_local_kw"], e["load_kw"]),
        "curtailment_rate": _ratio(e["curtailed_kw"], e["green_available_kw"]),
        "green_available_kwh": e["green_available_kw"], "green_generated_kwh": e["green_kw"],
        "green_local_kwh": e["green_local_kw"], "green_exported_kwh": e["green_exported_kw"],
        "curtailed_kwh": e["curtailed_kw"], "consumption_kwh": e["load_kw"],
        "grid_import_kwh": e["import_kw"], "grid_export_kwh": e["export_kw"],
        "peak_import_kw": float(max(v["import_kw"].max(), 0.0)), "peak_valley_difference_kw": p_max - p_min,
        "peak_valley_rate": _ratio(p_max - p_min, p_max) if importer else float("nan"),
        "load_factor": _ratio(float(net.mean()), p_max) if importer else float("nan"),
        "ramp_max_kw_per_h": float(ramps.max()) if len(ramps) else 0.0,
        "ramp_mean_kw_per_h": float(ramps.mean()) if len(ramps) else 0.0,
        "energy_cost_cny": energy_cost, "export_revenue_cny": revenue, "demand_charge_cny": demand,
        "total_cost_cny": energy_cost - revenue + demand - dr["dr_payment_cny"] + dr["dr_penalty_cny"],
        **dr, **market, **_comms(r), **_forecast_dropouts(r), **_outages(r),
        "setpoint_error_kwh": _setpoint_error_kwh(r),
        "co2_kg": money["co2_kg"],
        **_ev(r),
        **_processes(r),
        "production_lost_kwh": _total(r, "p_lost_kw") * dt,
        "comfort_violation_kh": _total(r, "comfort_violation_kh"),
        "comfort_too_hot_kh": _total(r, "comfort_too_hot_kh"),
        "comfort_too_cold_kh": _total(r, "comfort_too_cold_kh"),
        "ac_band_excess_kh": _total(r, "band_excess_kh"),
        "battery_cycles": _ratio(discharged, capacity) if capacity > 0 else 0.0,
        "storage_energy_change_kwh": _storage_change_kwh(r),
        "import_violation_kwh": float(nodes.xs("import_violation_kw", axis=1, level="quantity").to_numpy().sum() * dt),
        "load_shed_kwh": _node_total(nodes, "shed_kw") * dt,
        "load_unserved_kwh": _node_total(nodes, "unserved_kw") * dt,
        "export_violation_kwh": float(nodes.xs("export_violation_kw", axis=1, level="quantity").to_numpy().sum() * dt),
        "vpp_limit_violation_kwh": _vpp_violation_kwh(r, v),
        "ramp_limit_violation_kwh": ramp_kwh,
        "ramp_limit_violation_max_kw_per_h": ramp_max,
        "solve_time_s": float((r.dispatch["build_time_s"] + r.dispatch["solve_time_s"]).sum()),
        "n_fallbacks": float(r.dispatch["fallback"].astype(bool).sum()),
    }
    return pd.Series({name: float(k[name]) for name in KPI_META}, name=r.strategy)


def relative_kpis(kpis: pd.Series, baseline: pd.Series) -> pd.DataFrame:
    """KPI table: value, baseline, delta (value - baseline), delta_pct, unit, better, description."""
    delta = kpis - baseline
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * delta / baseline.abs().where(baseline.abs() > 0)
    pct = pct.where(kpis * baseline >= 0)      # no percentage across a change of sign
    meta = pd.DataFrame(KPI_META, index=["unit", "better", "description"]).T
    return pd.DataFrame({"value": kpis, "baseline": baseline, "delta": delta, "delta_pct": pct}).join(meta)
