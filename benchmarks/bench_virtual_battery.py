"""The fleet-level virtual-battery solve for a 100k-asset city, next to the
centralised model on an instance that fits this machine.

The dispatch problem is synthesised directly as flexibility forms (no engine,
no asset physics): a city mix over four nodes, each node with its own fleets
of EV sessions (StorageLike, no discharge), rooftop PV and wind
(CurtailableSource), two-state buildings (Thermal), batteries and shiftable
industrial load (StorageLike), and a base load (FixedProfile), on the default
27-block horizon (``HorizonGrid.build(k0, 0.25, 4, 96, 4)``).

Timed per window, as ``VirtualBattery.decide`` runs it: aggregation + LP build
(first window) or update (later windows) + HiGHS solve + disaggregation to
every asset.  The centralised ``source_load_interaction`` is timed the same
way (build + solve) at a smaller size: at 100k assets its LP would have
millions of columns (printed, extrapolated from the measured size), which
``../shared/OPTIMIZER.md`` measured needing far beyond this machine's memory
at 30k x 96 already.

Run: ``python benchmarks/bench_virtual_battery.py [N_CITY] [N_CENTRAL]``
(defaults 100,000 and 2,000).  Target: the 100k virtual-battery window < 1 s.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from vpp.dispatch import DispatchProblem, NodeLimits
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, StorageLike, Thermal
from vpp.optimizer.interaction import InteractionOptions, SourceLoadInteraction
from vpp.optimizer.virtual_battery import VirtualBattery, VirtualBatteryOptions

# share of assets per form (sums to 1): 50k EV, 40k PV, 5k buildings, 2k batteries,
# 2k industrial sites, 1k wind turbines at 100k
MIX = {"ev": 0.50, "pv": 0.40, "building": 0.05, "battery": 0.02, "industry": 0.02, "wind": 0.01}
NODES = 4
STEP_H = 0.25
TARGET_S = 1.0
REPEATS = 3


def _grid(k0: int) -> HorizonGrid:
    return HorizonGrid.build(k0, STEP_H, 4, 96, 4)


def _hours(grid: HorizonGrid) -> np.ndarray:
    """Hour of day at each block's middle. [h]"""
    return ((grid.k0 + grid.starts + grid.steps_per_block / 2) * STEP_H) % 24


def ev_form(fleet, node, n, grid, rng) -> StorageLike:
    """EV sessions: ~40 % plugged, 7-11 kW, a need by a departure block; no discharge."""
    h, dt = grid.n_blocks, grid.dt_h
    plugged = rng.random(n) < 0.4
    p_kw = rng.choice([7.0, 11.0], n) * plugged
    eta = rng.uniform(0.88, 0.95, n)
    dep = rng.integers(1, h + 1, n)                               # blocks before departure
    live = np.arange(h)[None, :] < dep[:, None]
    pc = p_kw[:, None] * live
    room = np.cumsum(eta[:, None] * dt[None, :] * pc, axis=1)     # most energy by each block end
    need = np.minimum(rng.uniform(5, 40, n), room[:, -1]) * plugged
    e_max = np.minimum(need[:, None], room)
    e_min = np.maximum(need[:, None] - (room[:, -1:] - room), 0.0)
    z = np.zeros(n)
    return StorageLike(fleet, node, pc, np.zeros((n, h)), e_min, e_max, z, need, eta, np.ones(n), z,
                       np.full(n, 2.0), z)


def battery_form(fleet, node, n, grid, rng) -> StorageLike:
    h = grid.n_blocks
    p = rng.uniform(100, 1000, n)
    cap = 2 * p
    full = np.ones((n, h))
    e0 = rng.uniform(0.3, 0.7, n) * cap
    return StorageLike(fleet, node, full * p[:, None], full * p[:, None], full * 0.1 * cap[:, None],
                       full * 0.9 * cap[:, None], e0, e0.copy(), np.full(n, 0.95), np.full(n, 0.95),
                       np.full(n, 1e-4), np.full(n, 0.5), np.full(n, 0.01))


def industry_form(fleet, node, n, grid, rng) -> StorageLike:
    """Shiftable process energy: a day's batch due by the horizon's end, no discharge."""
    h, dt = grid.n_blocks, grid.dt_h
    p = rng.uniform(200, 1000, n)
    work = p * rng.uniform(4, 10, n)
    full = np.ones((n, h))
    room = np.cumsum(full * p[:, None] * dt[None, :], axis=1)
    e_min = np.maximum(work[:, None] - (room[:, -1:] - room), 0.0)
    return StorageLike(fleet, node, full * p[:, None], np.zeros((n, h)), e_min, np.minimum(work[:, None], room),
                       np.zeros(n), work, np.ones(n), np.ones(n), np.zeros(n), np.full(n, 5.0), np.zeros(n))


def building_form(fleet, node, n, grid, rng) -> Thermal:
    """Two-state RC buildings (indoor air, mass) cooling in summer, 20-100 kW of HVAC.

    Forward Euler per 15-min step (stable for these constants), applied over
    each block's steps with inputs held: a tutorial-grade model, enough to give
    the LP a realistic structure.
    """
    h = grid.n_blocks
    c_air, c_mass = rng.uniform(20, 40, n), rng.uniform(200, 500, n)         # kWh/K
    ua, h_am = rng.uniform(2, 6, n), rng.uniform(10, 20, n)                  # kW/K
    cop, p_max = rng.uniform(3.0, 4.0, n), rng.uniform(20, 100, n)
    step = np.empty((n, 2, 2))
    step[:, 0, 0] = 1 - STEP_H * (ua + h_am) / c_air
    step[:, 0, 1] = STEP_H * h_am / c_air
    step[:, 1, 0] = STEP_H * h_am / c_mass
    step[:, 1, 1] = 1 - STEP_H * h_am / c_mass
    hours = _hours(grid)
    t_out = 30 + 4 * np.sin(np.pi * (hours - 9) / 12)                        # degC
    gains = (0.5 + 0.5 * np.clip(np.sin(np.pi * (hours - 6) / 12), 0, None))[None, :] * 2 * p_max[:, None]  # kW
    a, b, d = np.empty((n, h, 2, 2)), np.zeros((n, h, 2)), np.zeros((n, h, 2))
    for m in np.unique(grid.steps_per_block):
        power, acc = np.broadcast_to(np.eye(2), (n, 2, 2)).copy(), np.zeros((n, 2, 2))
        for _ in range(int(m)):
            acc += power
            power = power @ step
        cols = grid.steps_per_block == m
        a[:, cols] = power[:, None]
        b[:, cols] = (acc[:, :, 0] * (-cop * STEP_H / c_air)[:, None])[:, None, :]
        heat = (STEP_H / c_air)[:, None] * (ua[:, None] * t_out[None, cols] + gains[:, cols])     # K per step
        d[:, cols] = acc[:, None, :, 0] * heat[:, :, None]
    full = np.ones((n, h))
    return Thermal(fleet, node, a, b, d, rng.uniform(23, 25, (n, 2)), full * p_max[:, None], 22 * full, 26 * full,
                   np.full(n, 50.0))


def solar_form(fleet, node, n, grid, rng) -> CurtailableSource:
    sun = np.clip(np.sin(np.pi * (_hours(grid) - 6) / 12), 0, None)
    return CurtailableSource(fleet, node, rng.uniform(5, 50, n)[:, None] * sun[None, :] * rng.uniform(0.6, 1.0))


def wind_form(fleet, node, n, grid, rng) -> CurtailableSource:
    return CurtailableSource(fleet, node, rng.uniform(0, 3000, (n, grid.n_blocks)))


BUILDERS = {"ev": ev_form, "pv": solar_form, "building": building_form, "battery": battery_form,
            "industry": industry_form, "wind": wind_form}


def city(n_assets: int, k0: int, seed: int) -> DispatchProblem:
    """A synthetic dispatch window for *n_assets* split over four nodes.

    The structure (fleets, sizes) depends on *n_assets* only; *k0* and *seed*
    change forecasts, states and prices, so a later window updates the model.
    """
    rng = np.random.default_rng(seed)
    grid = _grid(k0)
    forms, nodes = [], []
    for j in range(NODES):
        node = f"node{j}"
        for kind, share in MIX.items():
            count = max(1, round(share * n_assets / NODES))
            forms.append(BUILDERS[kind](f"{kind}_{j}", node, count, grid, rng))
        base = -sum(np.sum(f.p_max_kw[:, 0]) for f in forms if isinstance(f, CurtailableSource) and f.node == node)
        forms.append(FixedProfile(f"base_{j}", node, base * rng.uniform(0.5, 1.0, grid.n_blocks)))
        total_power = sum(float(np.max(getattr(f, "p_charge_max_kw", getattr(f, "p_max_kw", 0.0)), axis=1).sum())
                          for f in forms if getattr(f, "node", None) == node and not isinstance(f, FixedProfile))
        nodes.append(NodeLimits(node, 0.5 * total_power, 0.3 * total_power))
    hours = _hours(grid)
    price = np.where((hours >= 8) & (hours < 21), 1.12, np.where(hours >= 22, 0.28, 0.7)) + rng.normal(0, 0.01)
    # export below the cheapest import: otherwise the LP's settlement could buy and sell at once for profit
    return DispatchProblem(grid, tuple(nodes), tuple(forms), price, np.full(grid.n_blocks, 0.2),
                           np.full(grid.n_blocks, 0.58), np.zeros(1), 0.0, "vpp")


def n_assets(problem: DispatchProblem) -> int:
    return sum(getattr(f, "n_assets", 0) for f in problem.forms)


def cold_s(make, problem) -> tuple[float, object]:
    """Median time of a first window (fresh strategy: aggregation, LP build, solve, disaggregation)."""
    times, decision = [], None
    for _ in range(REPEATS):
        strategy = make()
        t0 = time.perf_counter()
        decision = strategy.decide(problem)
        times.append(time.perf_counter() - t0)
        assert decision.status.startswith("optimal"), decision.status
    return statistics.median(times), decision


def rolling_s(make, windows) -> tuple[float, object]:
    """Median time of the later windows of one strategy (the persistent model updated)."""
    strategy = make()
    strategy.decide(windows[0])
    times, decision = [], None
    for problem in windows[1:]:
        t0 = time.perf_counter()
        decision = strategy.decide(problem)
        times.append(time.perf_counter() - t0)
        assert decision.status.startswith("optimal"), decision.status
    return statistics.median(times), decision


def main() -> None:
    n_city = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    n_central = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    big = [city(n_city, 4 * i, seed=i) for i in range(REPEATS + 1)]
    small = [city(n_central, 4 * i, seed=i) for i in range(REPEATS + 1)]
    vb = lambda: VirtualBattery(VirtualBatteryOptions())  # noqa: E731
    central = lambda: SourceLoadInteraction(InteractionOptions())  # noqa: E731
    vb().decide(city(100, 0, seed=99))           # warm-up: Pyomo's and HiGHS's one-off costs in a process

    vb_cold, d_big = cold_s(vb, big[0])
    vb_roll, _ = rolling_s(vb, big)
    vb_small_cold, d_vb_small = cold_s(vb, small[0])
    vb_small_roll, _ = rolling_s(vb, small)
    c_cold, d_central = cold_s(central, small[0])
    c_roll, _ = rolling_s(central, small)
    n_big, n_small = n_assets(big[0]), n_assets(small[0])

    print(f"horizon {big[0].grid.n_blocks} blocks; {NODES} nodes; mix {MIX}; medians of {REPEATS}")
    print(f"virtual battery, {n_big:,} assets: first window {vb_cold:.3f} s, rolling window {vb_roll:.3f} s; "
          f"LP {d_big.n_variables} x {d_big.n_constraints}; aggregation {d_big.metrics['vb_aggregate_s']:.3f} s, "
          f"disaggregation {d_big.metrics['vb_disaggregate_s']:.3f} s, HiGHS {d_big.solve_time_s:.3f} s   "
          f"(target < {TARGET_S:.1f} s: {'met' if max(vb_cold, vb_roll) < TARGET_S else 'NOT met'})")
    print(f"virtual battery, {n_small:,} assets: first window {vb_small_cold:.3f} s, rolling {vb_small_roll:.3f} s")
    print(f"centralised,     {n_small:,} assets: first window {c_cold:.3f} s, rolling {c_roll:.3f} s; "
          f"LP {d_central.n_variables:,} x {d_central.n_constraints:,}")
    scale = n_big / n_small
    print(f"centralised LP at {n_big:,} assets would be ~{d_central.n_variables * scale:,.0f} columns x "
          f"~{d_central.n_constraints * scale:,.0f} rows: not built here (OPTIMIZER.md: Pyomo needed 13 GB "
          f"for 30k assets x 96 steps; this machine has 24 GB)")
    print(f"ratio centralised / virtual battery at {n_small:,} assets: first window "
          f"{c_cold / vb_small_cold:.1f}x, rolling {c_roll / vb_small_roll:.1f}x")
    print(f"ratio centralised at {n_small:,} / virtual battery at {n_big:,}: first window "
          f"{c_cold / vb_cold:.1f}x, rolling {c_roll / vb_roll:.1f}x")
    gap = (d_vb_small.objective_cny - d_central.objective_cny) / abs(d_central.objective_cny)
    fracs = [v for k, v in d_vb_small.metrics.items() if k.startswith("vb_delivered_frac_")]
    dev = sum(v for k, v in d_vb_small.metrics.items() if k.startswith("vb_deviation_kwh_"))
    print(f"first window at {n_small:,} assets: aggregate plan objective {d_vb_small.objective_cny:,.0f} vs "
          f"centralised {d_central.objective_cny:,.0f} CNY ({gap:+.2%}; the aggregate is optimistic); lowest share "
          f"of a fleet plan placed {min(fracs):.3f}, placed off plan {dev:,.0f} kWh")


if __name__ == "__main__":
    main()
