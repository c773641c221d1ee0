"""One dispatch window of the default scenario: Pyomo build + solve vs the same
LP built in numpy and passed straight to highspy; then a rolling re-solve.

Run: ``python benchmarks/bench_dispatch.py`` (prints times and ratios; both
paths must reach the same objective).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _setup import engine_for, median_time  # noqa: E402
from reference_lp import DirectLP  # noqa: E402

from vpp.api import default_scenario_path  # noqa: E402
from vpp.optimizer.model import DispatchModel  # noqa: E402

OBJ_RTOL = 1e-6


def main() -> None:
    engine = engine_for(default_scenario_path(), "source_load_interaction")
    strategy = engine.strategy
    first, second = engine.problem(0), engine.problem(engine.cadence.interval_steps)

    def pyomo_cold():
        m = DispatchModel(first, strategy.weights, strategy.solver)
        status, solve_s = m.solve()
        return m, status, solve_s

    def direct_cold():
        d = DirectLP(first, strategy.weights, strategy.solver)
        return d, d.solve()

    t_pyomo, (model, status, solve_s) = median_time(pyomo_cold)
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

    def direct_rolling():
        d = DirectLP(second, strategy.weights, strategy.solver)
        return d.solve()

    t_roll, (_, roll_obj) = median_time(pyomo_rolling)
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
