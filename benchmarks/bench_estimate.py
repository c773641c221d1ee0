"""How close `vpp validate --estimate` comes to the run it estimates.

For each case, times ``vpp.estimate_run_time`` (the probes), then the run
itself (``vpp.run``, baseline cache cleared), and prints the estimate, the
run, their ratio and what the probes cost as a share of the run.

    python benchmarks/bench_estimate.py                  # the default cases
    python benchmarks/bench_estimate.py --case scenarios/industry.toml:virtual_battery
"""

from __future__ import annotations

import argparse
import time

import vpp
from vpp.estimate import estimate_run_time

CASES = ("scenarios/small_district.toml:rule_based", "scenarios/tcl_aggregate.toml:virtual_battery",
         "scenarios/industry.toml:virtual_battery", "scenarios/lingang_dr_week.toml:virtual_battery")


def measure(case: str) -> tuple[float, float, float]:
    """(estimate, probes' time, run's time) for ``path:strategy``. [s]"""
    path, _, strategy = case.partition(":")
    t0 = time.perf_counter()
    est = estimate_run_time(path, strategy or None)
    probes = time.perf_counter() - t0
    vpp.clear_cache()
    t0 = time.perf_counter()
    vpp.run(path, strategy or None)
    return est.total_s, probes, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", help="scenario:strategy (repeatable; default: %s)" % ", ".join(CASES))
    args = ap.parse_args()
    print(f"{'case':58s} {'estimate':>9s} {'run':>9s} {'ratio':>6s} {'probes/run':>10s}")
    for case in args.case or CASES:
        est, probes, run = measure(case)
        print(f"{case:58s} {est:8.1f}s {run:8.1f}s {est / run:6.2f} {probes / run:10.2f}", flush=True)


if __name__ == "__main__":
    main()
