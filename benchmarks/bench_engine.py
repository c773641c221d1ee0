"""Engine throughput in asset-steps per second, baseline strategy, 1k and 10k assets.

The engine (SimPy clock, events, dispatcher, export limiter, recorder) is
timed against a plain loop that does the same array work: the same fleets
stepped with their uncontrolled setpoints, events applied, no SimPy and no
recording.  The ratio is the price of the engine's orchestration.

Run: ``python benchmarks/bench_engine.py``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import simpy  # noqa: E402
from _setup import engine_for  # noqa: E402

from vpp.queueing import start_queue  # noqa: E402
from vpp.scenario import read_scenario_dict, scenario_from_dict  # noqa: E402

SMALL = Path(__file__).resolve().parents[1] / "scenarios" / "small_district.toml"

# share of assets per fleet type (a district mix)
MIX = {"pv": 0.40, "ev": 0.45, "building": 0.06, "battery": 0.04, "wind": 0.05}


def scenario(n_assets: int, days: int = 7):
    d = read_scenario_dict(SMALL)
    d["time"] = {"start": "2024-07-22T00:00:00", "end": f"2024-07-{22 + days:02d}T00:00:00", "step_min": 15}
    counts = {t: max(1, round(share * n_assets)) for t, share in MIX.items()}
    for f in d["fleets"]:
        f["count"] = counts[f["type"]]
    d["nodes"] = [{**n, "import_limit_kw": 1e9, "export_limit_kw": 1e9} for n in d["nodes"]]
    return scenario_from_dict(d, "<bench>", SMALL.parent), sum(counts.values())


def plain_loop(engine) -> float:
    """The same fleets stepped in a bare loop (the EV queue still runs in SimPy,
    since cars must find chargers; no dispatcher, limiter or recorder)."""
    fleets, tl = engine.fleets, engine.timeline
    env = simpy.Environment()
    for f in fleets:
        requests = f.arrival_requests()
        if requests is not None:
            start_queue(env, f, requests, tl.step_s, tl.n_steps)
    events = [(f, set(f.event_steps().tolist())) for f in fleets]
    t0 = time.perf_counter()
    for k in range(tl.n_steps):
        for f, steps in events:
            if k in steps:
                f.apply_events(k)
        env.run(until=k * tl.step_s + 1e-6)
        for f in fleets:
            f.step(k, None)
    return time.perf_counter() - t0


def main() -> None:
    print(f"{'assets':>7} {'steps':>6} {'engine s':>9} {'loop s':>8} {'engine asset-steps/s':>22} "
          f"{'loop asset-steps/s':>20} {'engine/loop':>12}")
    for n in (1_000, 10_000):
        sc, total = scenario(n)
        engine = engine_for(sc)
        t0 = time.perf_counter()
        engine.run()
        t_engine = time.perf_counter() - t0
        t_loop = plain_loop(engine_for(sc))
        steps = engine.timeline.n_steps
        print(f"{total:7d} {steps:6d} {t_engine:9.2f} {t_loop:8.2f} {total * steps / t_engine:22,.0f} "
              f"{total * steps / t_loop:20,.0f} {t_engine / t_loop:12.2f}")


if __name__ == "__main__":
    main()
