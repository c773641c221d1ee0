"""A city-scale asset mix: wall time, peak memory and each fleet's step cost
against a fused numpy update of the same asset-steps, baseline strategy.

Each fleet's step cost (asset-steps per second, measured inside the run) is
printed next to a plain numpy loop over the same number of assets doing one
fused elementwise update per step (``x = clip(a x + b u_k, lo, hi)``): the
ratio says how many such elementary updates a fleet's physics costs.  The whole
run is compared the same way with one loop over all its assets, and extrapolated
to a year when it is shorter.

Targets (issue "research at scale"): 100,000 assets for a year at 15 min,
baseline strategy, <= 20x the fused update of the same asset-steps, peak memory
<= 2 GB.

Run: ``python benchmarks/bench_city.py [N_ASSETS]`` (default 100,000; a synthetic
mix for one week) or ``python benchmarks/bench_city.py --scenario
scenarios/shanghai_city.toml [--days N] [--start 2024-01-01]``.  The simulation
runs in a child process so that its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[1]

# assets per type at 100k (a district mix scaled up; TCL assets are populations of 500 ACs)
MIX = {"pv": 0.40, "ev": 0.50, "building": 0.05, "battery": 0.02, "wind": 0.01, "industry": 0.0195,
       "datacentre": 0.0001, "tcl": 0.0004}
PARAMS = {"battery": {"p_max_kw": 1000.0, "e_max_kwh": 2000.0}, "tcl": {"units_per_population": 500}}


def scenario_dict(n_assets: int) -> dict:
    fleets = []
    for t, share in MIX.items():
        count = max(1, round(share * n_assets))
        fleets.append({"name": t, "type": t, "node": "city", "count": count, "params": PARAMS.get(t, {})})
    return {"name": f"city {n_assets}", "seed": 1,
            "time": {"start": "2024-07-22T00:00:00", "end": "2024-07-29T00:00:00", "step_min": 15},
            "nodes": [{"name": "city", "import_limit_kw": 1e12, "export_limit_kw": 1e12}],
            "fleets": fleets}


def load(args) -> object:
    """The synthetic mix of *args.n_assets*, or *args.scenario* over *args.days* from *args.start*."""
    from _setup import scenario_over

    from vpp.scenario import scenario_from_dict

    if args.scenario is None:
        return scenario_from_dict(scenario_dict(args.n_assets), "<bench>", ROOT / "scenarios")
    return scenario_over(args.scenario, args.start, args.days)


def child(args) -> None:
    """Build and run the engine, timing every fleet's step; print JSON."""
    from _setup import engine_for

    sc = load(args)
    t0 = time.perf_counter()
    engine = engine_for(sc)
    build_s = time.perf_counter() - t0
    cost = {f.name: 0.0 for f in engine.fleets}
    for f in engine.fleets:
        inner = f.step

        def timed(k, sp, inner=inner, name=f.name):
            t = time.perf_counter()
            out = inner(k, sp)
            cost[name] += time.perf_counter() - t
            return out

        f.step = timed
    t0 = time.perf_counter()
    engine.run()
    run_s = time.perf_counter() - t0
    steps = engine.timeline.n_steps
    print(json.dumps({
        "assets": sum(f.n_assets for f in engine.fleets), "steps": steps, "build_s": build_s, "run_s": run_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "fleets": {f.name: {"n": f.n_assets, "step_s": cost[f.name]} for f in engine.fleets}}))


def numpy_loop_s(n: int, steps: int) -> float:
    """One fused elementwise update of n assets per step, *steps* times."""
    rng = np.random.default_rng(0)
    x, a, b = rng.random(n), rng.random(n), rng.random(n)
    u = rng.random(steps)
    t0 = time.perf_counter()
    for k in range(steps):
        x = np.clip(a * x + b * u[k], 0.0, 1.0)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n_assets", nargs="?", type=int, default=100_000)
    ap.add_argument("--scenario", help="a scenario file instead of the synthetic mix")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--start", default="2024-07-22")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    out = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], capture_output=True, text=True,
                         check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    steps, year = r["steps"], 366 * 96 / r["steps"]
    what = args.scenario or "synthetic city mix"
    print(f"{what}: {r['assets']:,} assets x {steps} steps at 15 min, baseline strategy")
    whole = numpy_loop_s(r["assets"], steps)
    print(f"build {r['build_s']:.1f} s, run {r['run_s']:.1f} s "
          f"({r['assets'] * steps / r['run_s']:,.0f} asset-steps/s), peak memory {r['peak_rss_mb']:,.0f} MB")
    print(f"the run is {r['run_s'] / whole:.1f}x a fused numpy update of the same asset-steps ({whole:.2f} s; "
          f"target <= 20x); a year at this pace: ~{r['run_s'] * year / 60:.1f} min")
    print(f"{'fleet':>11} {'assets':>8} {'step s':>8} {'asset-steps/s':>15} {'numpy loop':>15} {'ratio':>7}")
    for name, f in r["fleets"].items():
        base = numpy_loop_s(f["n"], steps)
        rate, base_rate = f["n"] * steps / f["step_s"], f["n"] * steps / base
        print(f"{name:>11} {f['n']:8,d} {f['step_s']:8.2f} {rate:15,.0f} {base_rate:15,.0f} {base_rate / rate:7.1f}")


if __name__ == "__main__":
    main()
