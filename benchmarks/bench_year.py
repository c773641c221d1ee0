"""A year of the default district: each strategy's wall time and peak memory.

Runs ``scenarios/shanghai_lingang.toml`` from 1 January for ``--days`` days
(default 366, the year 2024) with the baseline, ``virtual_battery`` and
``source_load_interaction``, each in its own child process (so that its peak
memory is its own), without the KPIs' second baseline run.  Prints each run's
time, its time per simulated week, its ratio to the baseline strategy's time
measured in the same run (the machine's speed cancels), and, for a shorter
period, the time extrapolated to a year.

Targets (issue "research at scale"): a year with ``virtual_battery`` <= 3 min,
with ``source_load_interaction`` <= 20 min.

``--solver simplex`` runs the optimising strategies with HiGHS's dual simplex
(warm-started from the previous window's basis) instead of their default
interior point: on the virtual battery's small LP it is the faster of the two.

Run: ``python benchmarks/bench_year.py [--days N] [--strategies a,b,c] [--scenario PATH] [--solver ipm|simplex]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MIN = {"virtual_battery": 3.0, "source_load_interaction": 20.0}


def child(scenario: str, days: int, strategy: str, solver: str | None) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from _setup import scenario_over

    from vpp import api

    sc = scenario_over(scenario, "2024-01-01", days)
    prep = api._prepare(sc, scenario)
    st = api._strategy(prep, strategy)
    if solver and "solver" in type(st.options).model_fields:
        st = type(st)(st.options.model_copy(update={"solver": solver}))
    t0 = time.perf_counter()
    api._run_one(prep, st, api.build_exogenous(sc), False, None)
    elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"elapsed_s": elapsed, "peak_mb": peak_mb}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=366)
    ap.add_argument("--strategies", default="source_follows_load,virtual_battery,source_load_interaction")
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "shanghai_lingang.toml"))
    ap.add_argument("--solver", choices=("ipm", "simplex"), help="HiGHS method of the optimising strategies")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.scenario, args.days, args.child, args.solver)
        return
    out = {}
    for s in args.strategies.split(","):
        cmd = [sys.executable, __file__, "--child", s, "--days", str(args.days), "--scenario", args.scenario]
        cmd += ["--solver", args.solver] if args.solver else []
        out[s] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    base = out.get("source_follows_load", {}).get("elapsed_s")
    year = 366 / args.days
    print(f"{Path(args.scenario).name}, {args.days} days from 2024-01-01"
          + (f", optimising strategies with {args.solver}" if args.solver else ""))
    for s, r in out.items():
        t = r["elapsed_s"]
        line = f"{s:26s} {t:8.1f} s  {t / args.days * 7:6.1f} s/week  peak {r['peak_mb']:6.0f} MB"
        if base:
            line += f"  {t / base:5.1f}x the baseline strategy"
        if year != 1:
            line += f"  (a year: ~{t * year / 60:.1f} min)"
        if s in TARGET_MIN:
            line += f"  target a year <= {TARGET_MIN[s]:.0f} min"
        print(line)


if __name__ == "__main__":
    main()
