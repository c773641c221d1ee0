"""Parameter sweeps on Dask: ``vpp sweep SPEC.toml`` and :func:`sweep` (orchestration).

Each point of the sweep (a scenario with the point's values and one seed) is one
Dask task that runs every strategy on the same draws with one baseline run
(:func:`vpp.api.compare`).  Each run (point, seed, strategy) writes its own
folder, ``runs/<hash>/``, atomically; the hash is of the resolved scenario
(seed included) and the strategy, so a sweep started again skips every run
already written, and a run killed half-way leaves only a ``.partial`` folder,
removed when the sweep starts again.  A run that fails is recorded with its
one-line error (``status = "failed"``) and does not stop the others.

The sweep ends by writing ``sweep.parquet`` (one row per run: the varied values,
seed, strategy, status, every KPI) and ``sweep.html``.

The tasks run on a :class:`dask.distributed.LocalCluster` (processes, one worker
per core) unless ``scheduler`` names a running one (e.g. from dask-jobqueue or
Kubernetes); the workers must see the scenario's files and the output folder
(a shared file system).  A script that calls :func:`sweep` needs the
``if __name__ == "__main__":`` guard: Dask starts worker processes by spawning.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vpp.errors import InputError, ScenarioError
from vpp.outdir import hold_lock
from vpp.progresslog import LogLines, on_terminal
from vpp.results import package_version, write_atomically
from vpp.scenario import scenario_from_dict
from vpp.summary import sweep_html, sweep_repr
from vpp.sweepspec import SweepSpec, apply_point, check_paths, load_sweep_spec, read_base

__all__ = ["sweep", "SweepResult", "RunKey"]

RUNS = "runs"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunKey:
    """One run of a sweep: a point's values, a seed and a strategy, and its folder's name."""

    point: dict[str, Any]
    seed: int
    strategy: str
    hash: str


@dataclass(repr=False)
class SweepResult:
    """A finished sweep.

    Attributes
    ----------
    table : DataFrame
        One row per run: the varied names, ``seed``, ``strategy``, ``status``
        (``ok`` or ``failed``), ``error``, ``hash``, ``elapsed_s``,
        ``vpp_version`` (of the code that made the run: a sweep resumed after
        an upgrade mixes versions, and says so) and every KPI.
    folder : Path
        Where ``sweep.parquet``, ``sweep.html`` and ``runs/`` are.
    varied : list of str
        What the sweep varies (dotted paths and scale names).
    computed, skipped : int
        Runs made by this call, and runs found already done.
    """

    table: pd.DataFrame
    folder: Path
    varied: list[str]
    computed: int = 0
    skipped: int = 0
    elapsed_s: float = 0.0
    failed: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return sweep_repr(self)

    def _repr_html_(self) -> str:
        return sweep_html(self)


@dataclass
class _Task:
    """One point and seed: the strategies still to run on it, and where each goes."""

    data: dict
    source: str
    base_dir: Path
    keys: list[RunKey]


def _one_line(e: BaseException) -> str:
    if isinstance(e, InputError):
        return str(e)
    return " ".join(f"{type(e).__name__}: {e}".split())


def _hash(resolved: str, strategy: str) -> str:
    return hashlib.sha256(f"{resolved}\n# strategy: {strategy}\n".encode()).hexdigest()[:16]


def _write_run(runs: Path, key: RunKey, status: str, error: str | None = None, kpis: dict | None = None,
               elapsed_s: float = 0.0, fill_more=None) -> None:
    """Write one run's folder atomically (a concurrent duplicate loses quietly)."""
    record = {"hash": key.hash, "strategy": key.strategy, "seed": key.seed, "point": key.point, "status": status,
              "error": error, "elapsed_s": elapsed_s, "vpp_version": package_version(), "kpis": kpis or {}}

    def fill(tmp: Path):
        if fill_more is not None:
            fill_more(tmp)
        (tmp / RUN_FILE).write_text(json.dumps(record, default=str, allow_nan=True), encoding="utf-8")

    try:
        write_atomically(runs / key.hash, fill)
    except OSError:
        if not (runs / key.hash / RUN_FILE).exists():
            raise


def _compare_task(task: _Task, runs: Path, keep_results: bool) -> list[tuple[str, str, str | None]]:
    """Run one point and seed with every strategy it still lacks; write each run's
    folder.  Returns ``(hash, status, error)`` per run.  (Executed on a worker.)"""
    from vpp import api

    t0 = time.perf_counter()
    labels = [k.strategy for k in task.keys]
    try:
        sc = scenario_from_dict(task.data, task.source, task.base_dir)
        comp = api.compare(sc, tuple(labels))
    except Exception as e:          # any failure is this point's, recorded, never the sweep's
        msg = _one_line(e)
        for k in task.keys:
            _write_run(runs, k, "failed", msg, elapsed_s=time.perf_counter() - t0)
        return [(k.hash, "failed", msg) for k in task.keys]
    elapsed = (time.perf_counter() - t0) / len(comp.results)
    resolved = api.resolved_scenario(sc)
    for k in task.keys:
        r = comp.results[k.strategy]
        row = {name: _plain(v) for name, v in comp.table.loc[k.strategy].items()}

        def more(tmp: Path, r=r):
            (tmp / "scenario.toml").write_text(resolved, encoding="utf-8")   # what the hash is of
            if keep_results:
                r.save(tmp / "results")

        _write_run(runs, k, "ok", kpis=row, elapsed_s=elapsed, fill_more=more)
    return [(k.hash, "ok", None) for k in task.keys]


def _plain(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def _read_run(runs: Path, h: str) -> dict | None:
    try:
        return json.loads((runs / h / RUN_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _clean_partials(runs: Path) -> None:
    """Remove what a killed run left half-written."""
    for p in runs.glob(".*.partial"):
        shutil.rmtree(p, ignore_errors=True)


def _check(spec: SweepSpec, default_scenario: Path) -> tuple[dict, Path, str, list[str]]:
    """Refuse a spec its scenario cannot take, before anything is written: (base
    scenario dict, its folder, its name, the strategies with the baseline first)."""
    from vpp import api

    base, base_dir, source = read_base(spec, default_scenario)
    check_paths(spec, base)
    first = scenario_from_dict(base, source, base_dir)
    for i, name in enumerate(spec.strategies):
        try:
            api.check_strategy(first, name)
        except ScenarioError as e:
            raise ScenarioError(spec.source, f"strategies[{i}]", e.reason) from None
    return base, base_dir, source, list(dict.fromkeys([api.BASELINE, *spec.strategies]))


def _plan(spec: SweepSpec, checked, runs: Path, write: bool = True) -> tuple[list[RunKey], list[_Task], int]:
    """Every run of the sweep, the tasks for those not yet written, and how many
    were.  A point the scenario refuses is recorded at once as failed for each
    strategy (unless not *write*: a dry run writes nothing)."""
    from vpp import api

    base, base_dir, source, labels = checked
    keys, tasks, done = [], [], 0
    for point in spec.expand():
        for seed in spec.seeds_for(int(base.get("seed", 0))):
            data = apply_point(base, spec, point, seed)
            try:
                resolved, err = api.resolved_scenario(scenario_from_dict(data, source, base_dir)), None
            except InputError as e:
                resolved, err = json.dumps(data, default=str, sort_keys=True), str(e)
            point_keys = [RunKey(point, seed, s, _hash(resolved, s)) for s in labels]
            keys += point_keys
            todo = [k for k in point_keys if _read_run(runs, k.hash) is None]
            done += len(point_keys) - len(todo)
            if err is not None:
                for k in todo if write else ():
                    _write_run(runs, k, "failed", err)
            elif todo:
                tasks.append(_Task(data, source, base_dir, todo))
    return keys, tasks, done


def _client(scheduler: str | None, workers: int | None):
    """A Dask client: on *scheduler* if given, else on a new local cluster of processes."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def _execute(tasks: list[_Task], runs: Path, keep_results: bool, scheduler, workers, progress: bool) -> None:
    """Run the tasks on Dask; a task whose worker died is recorded as failed."""
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    if not tasks:
        return
    client, cluster = _client(scheduler, workers)
    total = sum(len(t.keys) for t in tasks)
    bar = tqdm(total=total, desc="sweep", unit="run", disable=None if progress else True, leave=False)
    log = LogLines("sweep", total, "runs", progress and not on_terminal(sys.stderr))
    done = n_failed = 0
    try:
        futures = {client.submit(_compare_task, t, runs, keep_results, pure=False): t for t in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                failed = sum(status == "failed" for _, status, _ in fut.result())
            except Exception as e:      # the worker itself failed (killed, out of memory)
                failed = 0
                for k in task.keys:
                    rec = _read_run(runs, k.hash)
                    if rec is None:
                        _write_run(runs, k, "failed", _one_line(e))
                    failed += rec is None or rec.get("status") == "failed"
            bar.update(len(task.keys))
            done, n_failed = done + len(task.keys), n_failed + failed
            log.update(done, f"{n_failed} failed")
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()


def _table(keys: list[RunKey], runs: Path, varied: list[str], missing: str = "failed") -> pd.DataFrame:
    rows = []
    for k in keys:
        rec = _read_run(runs, k.hash) or {"status": missing, "error": None if missing == "planned" else
                                          "run folder missing", "kpis": {}}
        rows.append({**{n: _label(k.point.get(n)) for n in varied}, "seed": k.seed, "strategy": k.strategy,
                     "status": rec["status"], "error": rec.get("error"), "hash": k.hash,
                     "elapsed_s": rec.get("elapsed_s", float("nan")), "vpp_version": rec.get("vpp_version"),
                     **rec.get("kpis", {})})
    return pd.DataFrame(rows)


def _label(value):
    """A varied value as a table cell: a table of values as its TOML-like text."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_label(v)}" for k, v in value.items())
    return value


def _write_outputs(folder: Path, table: pd.DataFrame, varied: list[str]) -> None:
    """``sweep.parquet`` and ``sweep.html``, each replaced atomically."""
    from vpp.dashboards import sweep_report

    for name, write in (("sweep.parquet", lambda p: _parquet_safe(table).to_parquet(p)),
                        ("sweep.html", lambda p: p.write_text(sweep_report(table, varied), encoding="utf-8"))):
        tmp = folder / f".{name}.partial"
        write(tmp)
        os.replace(tmp, folder / name)


def _parquet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Varied values of mixed types (numbers and text) as text, which Parquet can hold."""
    t = table.copy()
    for c in t.columns:
        if pd.api.types.is_object_dtype(t[c]) and t[c].map(type).nunique() > 1:
            t[c] = t[c].map(lambda v: None if v is None else str(v))
    return t


def sweep(spec: str | Path | SweepSpec, out: str | Path | None = None, *, scheduler: str | None = None,
          workers: int | None = None, progress: bool = False, dry_run: bool = False) -> SweepResult:
    """Run a sweep on Dask, skipping runs already written in *out*.

    Parameters
    ----------
    spec : path or SweepSpec
        The sweep file (see :mod:`vpp.sweepspec`).
    out : path, optional
        The sweep's folder (default: ``sweeps/<spec file's stem>``); given
        again, the sweep resumes where it stopped.
    scheduler : str, optional
        Address of a running Dask scheduler; default: a local cluster.
    workers : int, optional
        Worker processes of the local cluster (default: one per core).
    progress : bool
        A progress bar over runs (on a terminal).
    dry_run : bool
        Check the spec and count the runs, done and to do, without running or
        writing anything (the table's ``status`` is ``planned`` for a run to do).
    """
    from vpp import api

    t0 = time.perf_counter()
    if not isinstance(spec, SweepSpec):
        spec = load_sweep_spec(spec)
    folder = Path(out) if out is not None else Path("sweeps") / Path(spec.source).stem
    if folder.exists() and not folder.is_dir():
        raise InputError("--out", str(folder), "is a file; give a folder (nothing was written)")
    checked = _check(spec, api.default_scenario_path())
    runs = folder / RUNS
    if dry_run:
        keys, tasks, done = _plan(spec, checked, runs, write=False)
        table = _table(keys, runs, spec.varied, missing="planned")
        return SweepResult(table, folder, spec.varied, 0, done, time.perf_counter() - t0)
    with hold_lock(folder):             # a second sweep on the folder is refused, not interleaved
        runs.mkdir(parents=True, exist_ok=True)
        _clean_partials(runs)
        keys, tasks, done = _plan(spec, checked, runs)
        _execute(tasks, runs, spec.keep_results, scheduler, workers, progress)
        table = _table(keys, runs, spec.varied)
        _write_outputs(folder, table, spec.varied)
    failed = [f"{r['strategy']} seed {r['seed']} {({n: r[n] for n in spec.varied})}: {r['error']}"
              for r in table.to_dict("records") if r["status"] != "ok"]
    return SweepResult(table, folder, spec.varied, len(keys) - done, done, time.perf_counter() - t0, failed)
