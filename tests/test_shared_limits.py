"""Shared limits (``vpp.flex.SharedLimit``): one coupling row per group and block.

Hand-solved LPs (one-hour blocks, so kWh = kW), the independent highspy LP,
the virtual battery's aggregate within a limit, the checks that catch a plan
beyond one, and EV stations run end to end against least-laxity-first.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from test_optimizer import NO_EXTRAS, OBJ_TOL, X_TOL, problem, solve

import vpp
from vpp.dispatch import Decision
from vpp.flex import SharedLimit, StorageLike
from vpp.optimizer.virtual_battery import aggregate_storage, split
from vpp.scenario import read_scenario_dict, scenario_from_dict
from vpp.testing import check_setpoints

sys.path.insert(0, str(Path(__file__).parent))
from reference_lp import DirectLP  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def cars(pc_max, target, e_max=100.0, short=5.0, pd_max=None):
    """EV-like stores (eta 1, empty at the start) with per-block charge bounds *pc_max* (N, H)."""
    pc_max = np.asarray(pc_max, float)
    n, h = pc_max.shape
    pd = np.zeros((n, h)) if pd_max is None else np.asarray(pd_max, float)
    return StorageLike("ev", "n", pc_max, pd, np.zeros((n, h)), np.full((n, h), e_max), np.zeros(n),
                       np.asarray(target, float), np.ones(n), np.ones(n), np.zeros(n), np.full(n, short),
                       np.zeros(n))


def station(limit_kw, n=2, h=2):
    limit = np.broadcast_to(np.asarray(limit_kw, float), (1, h)).copy()
    return SharedLimit("ev", "n", np.zeros(n, dtype=int), limit, limit.copy())


# -- by hand ----------------------------------------------------------------------


def test_the_room_goes_to_the_car_that_leaves_first():
    # A leaves after block 0 (8 kWh wanted), B stays (12 kWh); each charger 10 kW,
    # the station 10 kW.  Price 1 CNY/kWh, shortfall 5: serve everything, 20 kWh,
    # A 8 and B 2 in block 0, B 10 in block 1: cost 20.  A static split (5 kW
    # each) would leave A 3 and B 2 kWh short: 15 + 5 x 5 = 40.
    ev = cars([[10, 0], [10, 10]], [8, 12])
    dm = solve(problem([ev, station(10.0)], [1.0, 1.0]))
    assert dm.objective_cny == pytest.approx(20.0, rel=OBJ_TOL)
    np.testing.assert_allclose(dm.setpoints(2)["ev"], [[-8, 0], [-2, -10]], atol=X_TOL)
    static = cars([[5, 0], [5, 5]], [8, 12])
    assert solve(problem([static], [1.0, 1.0])).objective_cny == pytest.approx(40.0, rel=OBJ_TOL)


def test_a_limit_that_cannot_serve_everyone_leaves_the_least_short():
    # Three cars want 10 kWh each in one block on a 12 kW station: 12 served,
    # 18 short at 5 CNY/kWh: 12 + 90 = 102.  The limit is hard (no slack).
    ev = cars([[10], [10], [10]], [10, 10, 10])
    dm = solve(problem([ev, station(12.0, n=3, h=1)], [1.0]))
    assert dm.objective_cny == pytest.approx(102.0, rel=OBJ_TOL)
    assert -dm.setpoints(1)["ev"].sum() == pytest.approx(12.0, abs=X_TOL)


def test_discharge_has_its_own_limit():
    # Two empty V2G cars: buy in block 0 at 1 CNY/kWh, sell in block 1 at 3.
    # Charging may reach 12 kW but discharging only 4, so only 4 kWh are worth
    # buying: cost 4 - 3 x 4 = -8.
    ev = cars([[10, 0], [10, 0]], [0, 0], pd_max=[[0, 10], [0, 10]])
    limit = SharedLimit("ev", "n", np.zeros(2, dtype=int), np.array([[12.0, 12.0]]), np.array([[4.0, 4.0]]))
    dm = solve(problem([ev, limit], [1.0, 1.0], export_prices=[0.0, 3.0]))
    assert dm.objective_cny == pytest.approx(-8.0, rel=OBJ_TOL)
    sp = dm.setpoints(2)["ev"]
    assert sp[:, 1].sum() == pytest.approx(4.0, abs=X_TOL)


def test_groups_are_independent_and_ungrouped_assets_are_free():
    # Chargers 0, 1 in group 0 (6 kW), 2 in group 1 (3 kW), 3 in none: each wants 10.
    ev = cars([[10]] * 4, [10] * 4)
    limit = SharedLimit("ev", "n", np.array([0, 0, 1, -1]), np.array([[6.0], [3.0]]), np.array([[6.0], [3.0]]))
    dm = solve(problem([ev, limit], [1.0]))
    sp = -dm.setpoints(1)["ev"][:, 0]
    assert sp[:2].sum() == pytest.approx(6.0, abs=X_TOL)
    assert sp[2] == pytest.approx(3.0, abs=X_TOL) and sp[3] == pytest.approx(10.0, abs=X_TOL)


def test_a_limit_moves_with_the_window():
    ev = cars([[10, 10], [10, 10]], [20, 20])
    pr = problem([ev, station(10.0)], [1.0, 1.0])
    dm = solve(pr)
    assert -dm.setpoints(2)["ev"].sum() == pytest.approx(20.0, abs=X_TOL)
    dm.update(problem([ev, station(15.0)], [1.0, 1.0]))
    dm.solve()
    assert -dm.setpoints(2)["ev"].sum() == pytest.approx(30.0, abs=X_TOL)


def test_agrees_with_the_independent_highspy_lp():
    rng = np.random.default_rng(4)
    for _ in range(5):
        n, h = 6, 4
        ev = cars(rng.uniform(0, 11, (n, h)), rng.uniform(0, 30, n), pd_max=rng.uniform(0, 5, (n, h)))
        limit = SharedLimit("ev", "n", rng.integers(-1, 2, n), rng.uniform(5, 20, (2, h)), rng.uniform(0, 8, (2, h)))
        pr = problem([ev, limit], rng.uniform(0.3, 1.5, h), export_prices=rng.uniform(0, 0.3, h))
        ref = DirectLP(pr, NO_EXTRAS)
        status, objective, _ = ref.solve()
        assert status == "optimal"
        assert solve(pr).objective_cny == pytest.approx(objective, rel=1e-6, abs=1e-6)


def test_a_limit_over_unknown_rows_is_refused():
    ev = cars([[10, 10]], [5])
    with pytest.raises(ValueError, match="groups 2 assets"):
        solve(problem([ev, station(10.0)], [1.0, 1.0]))


# -- the checks can fail -------------------------------------------------------------


def test_check_setpoints_catches_a_plan_beyond_the_limit():
    # The plan of the same cars solved without the limit charges 20 kW in block 0:
    # checked against the window with the limit it must fail.
    ev = cars([[10, 0], [10, 10]], [8, 12])
    limited = problem([ev, station(10.0)], [1.0, 1.0])
    free = solve(problem([ev], [1.0, 1.0])).setpoints(2)
    with pytest.raises(AssertionError, match="beyond its shared limit"):
        check_setpoints(limited, Decision(setpoints=free))
    check_setpoints(limited, Decision(setpoints=solve(limited).setpoints(2)))


# -- the virtual battery ---------------------------------------------------------------


def test_aggregate_power_is_capped_per_group():
    # Group 0: 10 + 10 on 12 kW; group 1: 7 on 10 kW; ungrouped 5: 12 + 7 + 5 = 24.
    ev = cars([[10], [10], [7], [5]], [0] * 4)
    limit = SharedLimit("ev", "n", np.array([0, 0, 1, -1]), np.array([[12.0], [10.0]]), np.array([[0.0], [0.0]]))
    agg = aggregate_storage(ev, problem([ev], [1.0]).grid, limit)
    assert agg.p_charge_max_kw[0, 0] == pytest.approx(24.0)


def test_split_keeps_each_group_within_its_limit():
    # Four chargers may each take 0..10 kW (charge, generator sign < 0); groups
    # {0, 1} (8 kW) and {2, 3} (20 kW); the fleet asks for 24 kW.
    lo, hi = np.full(4, -10.0), np.zeros(4)
    group = np.array([0, 0, 1, 1])
    room = (np.array([8.0, 20.0]), np.array([0.0, 0.0]))
    pro = split(-24.0, lo, hi, None, group, room)
    assert -pro[:2].sum() == pytest.approx(8.0) and -pro.sum() == pytest.approx(24.0)
    first = split(-24.0, lo, hi, np.array([0.0, 1.0, 2.0, 3.0]), group, room)
    np.testing.assert_allclose(first, [-8, 0, -10, -6])


# -- EV stations end to end ------------------------------------------------------------


def _ev_scenario(tmp_path, rows, limit_kw, policy):
    csv = tmp_path / "sessions.csv"
    csv.write_text("arrival,departure,energy_kwh,max_power_kw,station\n"
                   + "".join(f"2024-07-22T{a}+08:00,2024-07-22T{d}+08:00,{e},{p},garage\n" for a, d, e, p in rows))
    data = read_scenario_dict(ROOT / "scenarios" / "ev_charging.toml")
    fleet = next(f for f in data["fleets"] if f["name"] == "replayed")
    fleet["count"] = len(rows)
    fleet["params"].update(chargers_per_station=len(rows), station_limit_kw=limit_kw, station_policy=policy,
                           sessions_csv=str(csv), patience_min=0.0)
    data.update(fleets=[fleet], forecast={"perfect": True},
                dispatch={"interval_min": 15, "horizon_h": 24, "fine_horizon_h": 1, "coarse_step_min": 60})
    data["time"].update(start="2024-07-22T00:00:00", end="2024-07-23T00:00:00")
    return scenario_from_dict(data, str(tmp_path / "ev.toml"), ROOT / "scenarios")


# Six cars plugged at 08:00 (each charger 7 kW), leaving between 10:00 and 18:00,
# on a 12 kW supply: more energy is asked than the supply can give before the
# early cars leave, so who charges when decides the energy delivered.
SESSIONS = [("08:00", "10:00", 12, 7), ("08:00", "11:00", 14, 7), ("08:00", "12:30", 18, 7),
            ("08:00", "14:00", 20, 7), ("08:00", "16:00", 16, 6.6), ("08:00", "18:00", 22, 7)]


def _delivered(results) -> float:
    return float(results.tables["ev_sessions"]["delivered_kwh"].sum())


@pytest.mark.parametrize("limit_kw", [8.0, 12.0])
def test_centralised_delivers_at_least_least_laxity_first(tmp_path, limit_kw):
    # Every car is plugged (and known to the optimizer) from the first dispatch.
    llf = vpp.run(_ev_scenario(tmp_path, SESSIONS, limit_kw, "llf"), "source_follows_load", progress=False)
    fcfs = vpp.run(_ev_scenario(tmp_path, SESSIONS, limit_kw, "fcfs"), "source_follows_load", progress=False)
    opt = vpp.run(_ev_scenario(tmp_path, SESSIONS, limit_kw, "proportional"), "source_load_interaction",
                  progress=False)
    requested = sum(e for *_, e, _ in SESSIONS)
    assert _delivered(fcfs) < requested - 1.0, "the limit is tight: first-come-first-served leaves energy unserved"
    assert _delivered(opt) >= _delivered(llf) - 1e-6 * requested
    assert _delivered(opt) >= _delivered(fcfs) - 1e-6 * requested
