"""Results of one run: tidy pandas DataFrames with a tz-aware index.

Per-fleet and per-node aggregates are recorded by default; per-asset power
only for the fleets named in ``[output] per_asset``.  Saved as Parquet (CSV
on request) next to the resolved ``scenario.toml``, ``kpis.json`` and
``report.html``, written into a temporary folder and renamed into place, so
an interrupted save never leaves a half result.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import uuid
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

import pandas as pd

__all__ = ["Results", "write_atomically", "package_version", "dependency_versions"]

_FRAMES = ("fleets", "nodes", "exogenous", "dispatch", "events", "fleet_info")


@dataclass(repr=False)
class Results:
    """Everything a run produced.

    Attributes
    ----------
    scenario_name, strategy : str
    scenario_toml : str
        The resolved scenario (every default filled in), as TOML text.
    fleets : DataFrame
        Columns ``(fleet, quantity)``: ``p_kw`` (generator sign), for
        curtailable sources ``p_available_kw``, plus each fleet's state columns.
    nodes : DataFrame
        Columns ``(node, quantity)``: ``grid_import_kw``, ``grid_export_kw``,
        ``import_violation_kw``, ``export_violation_kw``, ``curtailed_kw``
        (available green power the strategy's caps and the export limiter
        withheld), ``shed_kw`` (load draw a hard import limit cut) and
        ``unserved_kw`` (the fixed part of it).  The exchange and the curtailment are the engine's record;
        ``fleets`` holds each fleet's own output, so the balance at a node,
        ``sum(p_kw) + grid_import_kw - grid_export_kw = 0``, can be checked
        from both sides (:func:`vpp.testing.check_balance`).
    exogenous : DataFrame
        Actual weather, prices and carbon intensity per step.
    dispatch : DataFrame
        One row per dispatch: status, fallback, build and solve seconds, objective.
    events : DataFrame
        Event log (time, kind, detail).
    fleet_info : DataFrame
        One row per fleet: type, node, role, green, curtailable, count and
        static totals (``p_rated_kw``, ``capacity_kwh``, ...).
    node_info : DataFrame
        One row per node: import and export limits. [kW]
    tables : dict of str to DataFrame
        Record tables, e.g. ``ev_sessions`` (with a ``fleet`` column).
    assets : dict of str to DataFrame
        Per-asset power of the fleets requested in ``[output] per_asset``.
    kpis : DataFrame or None
        Filled by :func:`vpp.run`: one row per KPI with value, baseline,
        delta, delta_pct, unit, description.
    baseline : Results or None
        The ``source_follows_load`` run of the same scenario and draws (kept
        in memory for reports; not saved).
    settlement : str
        ``"vpp"`` or ``"node"`` (how exchange is billed).
    demand_charge_cny_per_kw_month : float
        Demand charge per kW of each calendar month's billed peak (a month the
        run covers in part pays its share). [CNY/(kW month)]
    ramp_limit_kw_per_h : float
        The [grid] ramp limit on the VPP's net import (``inf``: none). [kW/h]
    """

    scenario_name: str
    strategy: str
    scenario_toml: str
    fleets: pd.DataFrame
    nodes: pd.DataFrame
    exogenous: pd.DataFrame
    dispatch: pd.DataFrame
    events: pd.DataFrame
    fleet_info: pd.DataFrame
    node_info: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    assets: dict[str, pd.DataFrame] = field(default_factory=dict)
    kpis: pd.DataFrame | None = None
    settlement: str = "vpp"
    demand_charge_cny_per_kw_month: float = 0.0
    seed: int = 0
    version: str = field(default_factory=lambda: package_version())
    vpp_limits_kw: tuple[float, float] = (float("inf"), float("inf"))
    ramp_limit_kw_per_h: float = float("inf")
    baseline: Results | None = field(default=None, repr=False)

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.fleets.index

    @property
    def dt_h(self) -> float:
        """Step length. [h]"""
        return (self.index[1] - self.index[0]).total_seconds() / 3600.0 if len(self.index) > 1 else 0.0

    def __repr__(self) -> str:
        from vpp.summary import results_repr

        return results_repr(self)

    def _repr_html_(self) -> str:
        from vpp.summary import results_html

        return results_html(self)

    def power(self) -> pd.DataFrame:
        """Realised power per fleet, generator sign. [kW]"""
        return self.fleets.xs("p_kw", axis=1, level="quantity")

    def save(self, folder: str | Path, csv: bool = False, report_html: str | None = None) -> Path:
        """Write the run into *folder* atomically (see module docstring)."""
        def fill(tmp: Path):
            for name in _FRAMES + ("node_info",):
                _write(getattr(self, name), tmp / name, csv)
            for name, df in self.tables.items():
                _write(df, tmp / name, csv)
            for name, df in self.assets.items():
                _write(df, tmp / f"assets_{name}", csv)
            (tmp / "scenario.toml").write_text(self.scenario_toml, encoding="utf-8")
            meta = {"scenario": self.scenario_name, "strategy": self.strategy, "settlement": self.settlement,
                    "seed": self.seed, "vpp_version": self.version, "vpp_limits_kw": list(self.vpp_limits_kw),
                    "ramp_limit_kw_per_h": self.ramp_limit_kw_per_h,
                    "demand_charge_cny_per_kw_month": self.demand_charge_cny_per_kw_month,
                    "tables": sorted(self.tables), "assets": sorted(self.assets),
                    "versions": dependency_versions()}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            if self.kpis is not None:
                (tmp / "kpis.json").write_text(kpis_to_json(self.kpis), encoding="utf-8")
            if report_html is not None:
                (tmp / "report.html").write_text(report_html, encoding="utf-8")
        return write_atomically(Path(folder), fill)

    @classmethod
    def load(cls, folder: str | Path) -> Results:
        """Read a run saved by :meth:`save`."""
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        frames = {name: _read(folder / name) for name in _FRAMES + ("node_info",)}
        kpis = None
        if (folder / "kpis.json").exists():
            kpis = pd.DataFrame(json.loads((folder / "kpis.json").read_text(encoding="utf-8"))).T
        return cls(meta["scenario"], meta["strategy"], (folder / "scenario.toml").read_text(encoding="utf-8"),
                   tables={n: _read(folder / n) for n in meta["tables"]},
                   assets={n: _read(folder / f"assets_{n}") for n in meta["assets"]},
                   kpis=kpis, settlement=meta["settlement"], seed=meta.get("seed", 0),
                   version=meta.get("vpp_version", "unknown"),
                   vpp_limits_kw=tuple(float(x) for x in meta.get("vpp_limits_kw", (float("inf"),) * 2)),
                   ramp_limit_kw_per_h=float(meta.get("ramp_limit_kw_per_h", float("inf"))),
                   demand_charge_cny_per_kw_month=_monthly_demand_charge(meta, frames["nodes"].index), **frames)


def dependency_versions() -> dict[str, str]:
    """Python's version and that of each installed dependency of vpp (extras too,
    where installed): what a run's ``meta.json`` records to be reproduced."""
    out = {"python": platform.python_version(), "vpp-sim": package_version()}
    try:
        reqs = requires("vpp-sim") or []
    except PackageNotFoundError:
        reqs = []
    for req in reqs:
        name = re.split(r"[\s;<>=!~\[]", req, maxsplit=1)[0]
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue                                   # an extra that is not installed
    return out


def package_version() -> str:
    """The installed vpp version (``unknown`` when run from an uninstalled tree)."""
    try:
        return version("vpp-sim")
    except PackageNotFoundError:
        return "unknown"


def kpis_to_json(kpis: pd.DataFrame) -> str:
    """KPI table as JSON: ``{kpi: {value, baseline, delta, delta_pct, unit, description}}``."""
    return json.dumps(json.loads(kpis.to_json(orient="index", double_precision=10)), indent=2)


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    if isinstance(df.columns, pd.MultiIndex):
        df = df.copy()
        df.columns = ["/".join(map(str, c)) for c in df.columns]
    return df


def _write(df: pd.DataFrame, stem: Path, csv: bool) -> None:
    flat = _flat(df)
    flat.to_parquet(stem.with_suffix(".parquet"))
    if csv:
        flat.to_csv(stem.with_suffix(".csv"))


def _read(stem: Path) -> pd.DataFrame:
    df = pd.read_parquet(stem.with_suffix(".parquet"))
    if len(df.columns) and all("/" in str(c) for c in df.columns):
        df.columns = pd.MultiIndex.from_tuples([tuple(c.split("/", 1)) for c in df.columns],
                                               names=["fleet" if stem.name == "fleets" else "node", "quantity"])
    return df


def _monthly_demand_charge(meta: dict, index: pd.DatetimeIndex) -> float:
    """The monthly demand charge of a saved run; a run saved before monthly
    billing stored the whole period's rate (the month taken as 730.5 h)."""
    if "demand_charge_cny_per_kw_month" in meta:
        return float(meta["demand_charge_cny_per_kw_month"])
    hours = len(index) * (index[1] - index[0]).total_seconds() / 3600.0 if len(index) > 1 else 0.0
    return float(meta["demand_charge_cny_per_kw"]) * 730.5 / hours if hours else 0.0


def write_atomically(folder: Path, fill) -> Path:
    """Create *folder* by filling a temporary sibling and renaming it.

    *folder* must not exist or must be empty.  Returns the folder.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.partial"
    tmp.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0700
    try:
        fill(tmp)
        if folder.exists():
            folder.rmdir()  # only an empty folder may be replaced
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
