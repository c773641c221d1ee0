"""Pyomo build + solve vs the same LP built in numpy and passed straight to
highspy, on two problems: one dispatch window of the default scenario (then a
rolling re-solve), and the issue's reference LP -- 1,000 EV-like storage
assets x 96 quarter-hour steps with availability windows and energy targets,
curtailable PV and a shared import limit, minimising import cost.

Run: ``python benchmarks/bench_dispatch.py [N ...]`` (prints times and ratios;
both paths must reach the same objective; ``N``: sizes of the reference LP,
default 1,000 assets).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _setup import engine_for, median_time  # noqa: E402
from reference_lp import DirectLP  # noqa: E402

from vpp.api import default_scenario_path  # noqa: E402
from vpp.dispatch import DispatchProblem, NodeLimits  # noqa: E402
from vpp.flex import CurtailableSource, HorizonGrid, StorageLike  # noqa: E402
from vpp.optimizer.model import DispatchModel  # noqa: E402

OBJ_RTOL = 1e-6


def reference_problem(n_assets: int = 1_000, steps: int = 96, seed: int = 1) -> DispatchProblem:
    """The issue's storage-dispatch LP: EV-like sessions plugged in over random
    windows of a day of quarter hours, each wanting 10-40 kWh by departure."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    arrive = rng.integers(0, steps - 16, n_assets)
    leave = np.minimum(arrive + rng.integers(16, 48, n_assets), steps)
    plugged = (t >= arrive[:, None]) & (t < leave[:, None])
    p_kw = rng.choice([7.0, 11.0, 22.0], n_assets)
    cap = np.full((n_assets, steps), 60.0)
    hour = t * 0.25
    price = np.where((hour >= 8) & (hour < 22), 1.2, 0.35)
    pv = np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None)[None, :] * 3_000.0
    storage = StorageLike(
        fleet="ev", node="n0", p_charge_max_kw=plugged * p_kw[:, None], p_discharge_max_kw=np.zeros((n_assets, steps)),
        e_min_kwh=np.zeros((n_assets, steps)), e_max_kwh=cap, e_init_kwh=np.zeros(n_assets),
        e_target_kwh=np.minimum(rng.uniform(10, 40, n_assets), p_kw * 0.25 * (leave - arrive) * 0.9),
        eta_charge=np.full(n_assets, 0.92), eta_discharge=np.ones(n_assets), self_discharge_per_h=np.zeros(n_assets),
        shortfall_cost_cny_per_kwh=np.full(n_assets, 5.0), throughput_cost_cny_per_kwh=np.zeros(n_assets))
    return DispatchProblem(
        grid=HorizonGrid(0, np.ones(steps, dtype=int), 0.25), nodes=(NodeLimits("n0", 4_000.0, 2_000.0),),
        forms=(storage, CurtailableSource("pv", "n0", pv)), price_import_cny_per_kwh=price,
        price_export_cny_per_kwh=np.full(steps, 0.3), co2_kg_per_kwh=np.full(steps, 0.42),
        peak_import_so_far_kw=np.zeros(1))


def reference_case(n_assets: int = 1_000) -> None:
    problem = reference_problem(n_assets)
    repeats = 3 if n_assets <= 3_000 else 1
    t_direct, (direct, (status, obj, solve_s)) = median_time(lambda: (d := DirectLP(problem), d.solve()), repeats)
    t_pyomo, model = median_time(lambda: _solved(DispatchModel(problem)), repeats)
    assert status == "optimal"
    assert abs(model.objective_cny - obj) / max(1.0, abs(obj)) < OBJ_RTOL, (model.objective_cny, obj)
    print(f"reference LP {n_assets:,} storage assets x 96 steps: "
          f"{model.lp.n_cols:,} columns x {model.lp.n_rows:,} rows")
    print(f"cold   Pyomo build+compile+solve {t_pyomo:7.3f} s  (build {model.build_time_s:.3f} s)")
    print(f"cold   direct highspy build+solve {t_direct:7.3f} s  (build {direct.build_time_s:.3f} s, "
          f"solve {solve_s:.3f} s)")
    print(f"cold   ratio Pyomo / direct: {t_pyomo / t_direct:.2f}   (target <= 2.0)")


def _solved(model: DispatchModel) -> DispatchModel:
    status, _ = model.solve()
    assert status.startswith("optimal"), status
    return model


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1_000]
    for n in sizes:
        reference_case(n)
        print()
    engine = engine_for(default_scenario_path(), "source_load_interaction")
    strategy = engine.strategy
    first, second = engine.problem(0), engine.problem(engine.cadence.interval_steps)

    def pyomo_cold():
        m = DispatchModel(first, strategy.weights, strategy.solver)
        status, solve_s = m.solve()
        return m, status, solve_s

    t_pyomo, (model, status, solve_s) = median_time(pyomo_cold)
    # the same LP: where selling beats buying, each account's choice as the model made it
    choice = model.network.choice.copy()

    def direct_cold():
        d = DirectLP(first, strategy.weights, strategy.solver, choice)
        return d, d.solve()

    t_direct, (direct, (d_status, d_obj, d_solve_s)) = median_time(direct_cold)
    assert status.startswith("optimal") and d_status == "optimal"
    rel = abs(model.objective_cny - d_obj) / max(1.0, abs(d_obj))
    assert rel < OBJ_RTOL, (model.objective_cny, d_obj)

    def pyomo_rolling():
        t0 = time.perf_counter()
        model.update(second)
        status, _ = model.solve()
        assert status.startswith("optimal")
        return time.perf_counter() - t0, model.objective_cny

    t_roll, (_, roll_obj) = median_time(pyomo_rolling)
    choice = model.network.choice.copy()

    def direct_rolling():
        d = DirectLP(second, strategy.weights, strategy.solver, choice)
        return d.solve()

    t_droll, (_, d_roll_obj, _) = median_time(direct_rolling)
    assert abs(roll_obj - d_roll_obj) / max(1.0, abs(d_roll_obj)) < OBJ_RTOL

    print(f"window: {model.lp.n_cols:,} columns x {model.lp.n_rows:,} rows (Pyomo); "
          f"{direct.n_cols:,} x {direct.n_rows:,} (direct); {first.grid.n_blocks} blocks")
    print(f"cold   Pyomo build+compile+solve {t_pyomo:7.3f} s  (build {model.build_time_s:.3f} s, "
          f"solve {solve_s:.3f} s)")
    print(f"cold   direct highspy build+solve {t_direct:7.3f} s  (build {direct.build_time_s:.3f} s, "
          f"solve {d_solve_s:.3f} s)")
    print(f"cold   ratio Pyomo / direct: {t_pyomo / t_direct:.2f}   (target <= 2.0)")
    print(f"rolling Pyomo persistent update+solve {t_roll:7.3f} s; direct rebuild+solve {t_droll:7.3f} s; "
          f"ratio {t_roll / t_droll:.2f}   (target <= 1.3)")
    print(f"objectives agree to {rel:.1e} (cold) ; {first.grid.n_blocks}-block horizon")


if __name__ == "__main__":
    main()
