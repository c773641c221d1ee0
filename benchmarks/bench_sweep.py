"""Parallel efficiency of ``vpp sweep`` on a local Dask cluster.

A sweep of 16 small runs (the small district, two days; 8 values of the PV
count, the baseline and the centralised strategy on each) is run twice in the
same process:

* serially: each point's task called in this process, one after the other
  (the same function the workers run; no Dask);
* on a ``LocalCluster`` of 2 worker processes, into a fresh folder.

Parallel efficiency = serial time / (workers x sweep time).  The sweep time is
printed with and without the cluster's start (a cluster user has one running).
Target: efficiency >= 0.8 on 2 workers, cluster start excluded.

Run: ``python benchmarks/bench_sweep.py [N_WORKERS]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from vpp import api
from vpp.sweeps import _check, _compare_task, _plan, sweep
from vpp.sweepspec import SweepSpec

TARGET = 0.8
SMALL = Path(__file__).resolve().parents[1] / "scenarios" / "small_district.toml"
SPEC = {"scenario": SMALL.as_posix(), "strategies": ["source_follows_load", "source_load_interaction"], "seeds": [1],
        "parameters": {"fleets.pv.count": [5, 10, 15, 20, 25, 30, 35, 40]}}


def serial_s(spec: SweepSpec, folder: Path) -> float:
    runs = folder / "runs"
    runs.mkdir(parents=True)
    _, tasks, _ = _plan(spec, _check(spec, api.default_scenario_path()), runs)
    t0 = time.perf_counter()
    for t in tasks:
        _compare_task(t, runs, keep_results=False)
    return time.perf_counter() - t0


def main() -> None:
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    spec = SweepSpec(**SPEC, base_dir=SMALL.parent, source="<bench>")
    from dask.distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        serial = serial_s(spec, Path(tmp) / "serial")
        t0 = time.perf_counter()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as c:
            start = time.perf_counter() - t0
            res = sweep(spec, Path(tmp) / "dask", scheduler=c.scheduler_address)
        assert (res.table["status"] == "ok").all() and res.computed == 16
    eff = serial / (workers * res.elapsed_s)
    print(f"16 runs: serial {serial:.1f} s; on {workers} workers {res.elapsed_s:.1f} s "
          f"(+ {start:.1f} s cluster start)")
    print(f"parallel efficiency {eff:.2f} (target >= {TARGET}); with the cluster start "
          f"{serial / (workers * (res.elapsed_s + start)):.2f}")


if __name__ == "__main__":      # Dask spawns worker processes: the guard keeps them from re-running this
    main()
