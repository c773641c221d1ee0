"""Collects per-step values during a run and assembles :class:`~vpp.results.Results`.

Preallocated numpy arrays (steps x fleets/nodes), filled once per step; the
DataFrames are built once, at the end.

Each side of a node's balance is recorded from its own source: a fleet's power
from the fleet's own output (:attr:`~vpp.assets.Fleet.last_p_kw`, its meter),
the grid exchange and the curtailment from the engine (the exchange that closes
the node, the available power the engine's caps and export limiter withheld).
A check that recomputes the balance from the results (:func:`vpp.testing.check_balance`)
so tests the engine's bookkeeping instead of restating it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vpp.assets.base import Fleet
from vpp.dispatch import Decision
from vpp.results import Results
from vpp.scenario import Scenario
from vpp.timeline import Timeline

__all__ = ["Recorder"]

LIMIT_TOL = 1e-6  # relative: exchange within this share of a limit counts as within it


def _beyond(x_kw: np.ndarray, limit_kw: float) -> np.ndarray:
    """Exchange beyond *limit_kw*, ignoring floating-point noise. [kW]"""
    over = x_kw - limit_kw
    return np.where(over > LIMIT_TOL * max(limit_kw, 1.0), over, 0.0)


class Recorder:
    """Per-step storage for one run."""

    def __init__(self, scenario: Scenario, fleets: list[Fleet], timeline: Timeline):
        self.scenario, self.fleets, self.timeline = scenario, fleets, timeline
        n, f = timeline.n_steps, len(fleets)
        self.p_kw = np.zeros((n, f))
        self.available_kw = np.full((n, f), np.nan)
        self.node_net_kw = np.zeros((n, len(scenario.nodes)))
        self.curtailed_kw = np.zeros((n, len(scenario.nodes)))
        self.shed_kw = np.zeros((n, len(scenario.nodes)))
        self.unserved_kw = np.zeros((n, len(scenario.nodes)))
        self.state = {fl.name: np.zeros((n, len(fl.state_columns))) for fl in fleets}
        self.assets = {fl.name: np.zeros((n, fl.n_assets)) for fl in fleets if fl.name in scenario.output.per_asset}
        self.dispatch_rows: list[dict] = []
        self.event_rows: list[dict] = []

    def step(self, k: int, available_kw: np.ndarray, node_net_kw: np.ndarray, curtailed_kw: np.ndarray,
             fleets, shed_kw: np.ndarray, unserved_kw: np.ndarray) -> None:
        """Record step *k*.

        Parameters
        ----------
        available_kw : ndarray, shape (F,)
            Curtailable fleets' power before curtailment (NaN for the others). [kW]
        node_net_kw : ndarray, shape (nodes,)
            Net injection the grid takes at each node (export positive). [kW]
        curtailed_kw : ndarray, shape (nodes,)
            Available power the engine withheld at each node. [kW]
        fleets : list of Fleet
            Read after stepping: power from each fleet's own output, and state.
        shed_kw, unserved_kw : ndarray, shape (nodes,)
            Load draw a hard node limit cut, and the fixed (unserved) part of it. [kW]
        """
        self.p_kw[k] = [fl.last_p_kw.sum() for fl in fleets]
        self.available_kw[k] = available_kw
        self.node_net_kw[k] = node_net_kw
        self.curtailed_kw[k] = curtailed_kw
        self.shed_kw[k] = shed_kw
        self.unserved_kw[k] = unserved_kw
        for fl in fleets:
            if fl.state_columns:
                s = fl.state()
                self.state[fl.name][k] = [s[c] for c in fl.state_columns]
            if fl.name in self.assets:
                self.assets[fl.name][k] = fl.last_p_kw

    def dispatch(self, k: int, d: Decision) -> None:
        self.dispatch_rows.append({
            "time": self.timeline.time_of(k), "status": d.status, "fallback": d.fallback,
            "build_time_s": d.build_time_s, "solve_time_s": d.solve_time_s,
            "objective_cny": d.objective_cny, "n_variables": d.n_variables, "n_constraints": d.n_constraints,
            **{str(key): float(v) for key, v in d.metrics.items()}})

    def net_import_kw(self, k: int) -> np.ndarray:
        """The VPP's net import of the steps recorded before step *k*. [kW]"""
        return -self.node_net_kw[:k].sum(axis=1)

    def event(self, k: int, kind: str, detail: str) -> None:
        self.event_rows.append({"time": self.timeline.time_of(k), "kind": kind, "detail": detail})

    def results(self, strategy: str, scenario_toml: str, exogenous: pd.DataFrame,
                demand_charge_cny_per_kw_month: float) -> Results:
        idx = self.timeline.index
        return Results(
            scenario_name=self.scenario.name, strategy=strategy, scenario_toml=scenario_toml,
            fleets=self._fleet_frame(idx), nodes=self._node_frame(idx),
            exogenous=exogenous.iloc[: len(idx)],
            dispatch=self._dispatch_frame(),
            events=pd.DataFrame(self.event_rows, columns=["time", "kind", "detail"]).set_index("time"),
            fleet_info=self._fleet_info(), node_info=self._node_info(), tables=self._tables(),
            assets={name: pd.DataFrame(a, index=idx, columns=[f"asset_{i}" for i in range(a.shape[1])])
                    for name, a in self.assets.items()},
            settlement=self.scenario.dispatch.settlement, seed=self.scenario.seed,
            vpp_limits_kw=tuple(float("inf") if x is None else float(x) for x in
                                (self.scenario.grid.vpp_import_limit_kw, self.scenario.grid.vpp_export_limit_kw)),
            demand_charge_cny_per_kw_month=demand_charge_cny_per_kw_month,
            ramp_limit_kw_per_h=float("inf") if self.scenario.grid.ramp_limit_kw_per_h is None
            else float(self.scenario.grid.ramp_limit_kw_per_h),
        )

    def _dispatch_frame(self) -> pd.DataFrame:
        base = ["time", "status", "fallback", "build_time_s", "solve_time_s", "objective_cny",
                "n_variables", "n_constraints"]
        extra = sorted({k for row in self.dispatch_rows for k in row} - set(base))
        return pd.DataFrame(self.dispatch_rows, columns=base + extra).set_index("time")

    def _fleet_frame(self, idx) -> pd.DataFrame:
        cols, data = [], []
        for j, fl in enumerate(self.fleets):
            cols.append((fl.name, "p_kw"))
            data.append(self.p_kw[:, j])
            if fl.curtailable:
                cols.append((fl.name, "p_available_kw"))
                data.append(self.available_kw[:, j])
            for c, name in enumerate(fl.state_columns):
                if fl.curtailable and name == "p_available_kw":
                    continue
                cols.append((fl.name, name))
                data.append(self.state[fl.name][:, c])
        return pd.DataFrame(np.column_stack(data), index=idx,
                            columns=pd.MultiIndex.from_tuples(cols, names=["fleet", "quantity"]))

    def _node_frame(self, idx) -> pd.DataFrame:
        cols, data = [], []
        for i, node in enumerate(self.scenario.nodes):
            net = self.node_net_kw[:, i]
            imp, exp = np.maximum(-net, 0.0), np.maximum(net, 0.0)
            quantities = {
                "grid_import_kw": imp, "grid_export_kw": exp,
                "import_violation_kw": _beyond(imp, node.import_limit_kw),
                "export_violation_kw": _beyond(exp, node.export_limit_kw),
                "curtailed_kw": self.curtailed_kw[:, i],
                "shed_kw": self.shed_kw[:, i], "unserved_kw": self.unserved_kw[:, i],
            }
            for q, v in quantities.items():
                cols.append((node.name, q))
                data.append(v)
        return pd.DataFrame(np.column_stack(data), index=idx,
                            columns=pd.MultiIndex.from_tuples(cols, names=["node", "quantity"]))

    def _fleet_info(self) -> pd.DataFrame:
        rows = []
        for fl in self.fleets:
            rows.append({"fleet": fl.name, "type": fl.type_name, "node": fl.node, "role": fl.role,
                         "green": fl.green, "curtailable": fl.curtailable, "count": fl.n_assets, **fl.info()})
        return pd.DataFrame(rows).set_index("fleet")

    def _node_info(self) -> pd.DataFrame:
        return pd.DataFrame([{"node": n.name, "import_limit_kw": n.import_limit_kw,
                              "export_limit_kw": n.export_limit_kw, "limits": n.limits}
                             for n in self.scenario.nodes]).set_index("node")

    def _tables(self) -> dict[str, pd.DataFrame]:
        out: dict[str, list] = {}
        for fl in self.fleets:
            for name, df in fl.tables().items():
                out.setdefault(name, []).append(df.assign(fleet=fl.name))
        return {name: pd.concat(dfs, ignore_index=True) for name, dfs in out.items()}
