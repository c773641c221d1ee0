"""The dispatch LP against optima known by hand, an independent LP, and itself rebuilt.

Hand-solved problems use one-hour blocks so energies equal powers.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyomo.environ import ConcreteModel, Constraint, Objective, Var
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from scipy.optimize import linprog

from vpp.dispatch import DispatchProblem, NodeLimits
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, StorageLike, Thermal
from vpp.optimizer.blocks import MatrixRows
from vpp.optimizer.lp import SolverOptions
from vpp.optimizer.model import DispatchModel, Weights

OBJ_TOL = 1e-5      # relative objective tolerance (interior point, no crossover)
X_TOL = 1e-4        # kW / degC tolerance on primal values
NO_EXTRAS = Weights(carbon_price_cny_per_t=0.0, curtailment_penalty_cny_per_kwh=0.0,
                    limit_violation_cny_per_kwh=100.0)


def grid(h, k0=0):
    return HorizonGrid(k0, np.ones(h, dtype=int), 1.0)


def battery(p_kw=10.0, e_max=20.0, e0=0.0, target=0.0, eta=1.0, h=2, node="n", fleet="bat"):
    one = np.ones((1, h))
    return StorageLike(fleet, node, p_kw * one, p_kw * one, 0 * one, e_max * one, np.array([e0]),
                       np.array([target]), np.array([eta]), np.array([eta]), np.array([0.0]),
                       np.array([50.0]), np.array([0.0]))


def problem(forms, prices, export_prices=None, nodes=(("n", 1e4, 1e4),), h=None, settlement="vpp"):
    h = h or len(prices)
    return DispatchProblem(
        grid(h), tuple(NodeLimits(*n) for n in nodes), tuple(forms), np.asarray(prices, float),
        np.zeros(h) if export_prices is None else np.asarray(export_prices, float), np.zeros(h),
        np.zeros(1 if settlement == "vpp" else len(nodes)), 0.0, settlement)


def solve(pr, weights=NO_EXTRAS):
    dm = DispatchModel(pr, weights)
    status, _ = dm.solve()
    assert status == "optimal"
    return dm


def test_battery_arbitrage_two_prices():
    # Load 10 kW; price 1 then 2.  Best: charge 10 kWh at 1, discharge at 2.
    # Import 20 then 0: cost 20 (vs 30 without the battery).
    pr = problem([battery(), FixedProfile("load", "n", np.array([-10.0, -10.0]))], [1.0, 2.0])
    dm = solve(pr)
    assert dm.objective_cny == pytest.approx(20.0, rel=OBJ_TOL)
    np.testing.assert_allclose(dm.setpoints(2)["bat"], [[-10.0, 10.0]], atol=X_TOL)


def test_battery_losses_make_small_spreads_unprofitable():
    # eta = 0.8 each way: 1 kWh bought at 1.0 returns 0.64 kWh, worth 0.64 * 1.5 = 0.96 < 1.
    pr = problem([battery(eta=0.8), FixedProfile("load", "n", np.array([-10.0, -10.0]))], [1.0, 1.5])
    dm = solve(pr)
    assert dm.objective_cny == pytest.approx(10.0 + 15.0, rel=OBJ_TOL)


def test_export_limit_curtails_the_surplus_unless_storage_absorbs_it():
    # PV 100 kW, load 30 kW, export limit 50 kW: 20 kW must be curtailed.
    pv = CurtailableSource("pv", "n", np.array([[100.0]]))
    load = FixedProfile("load", "n", np.array([-30.0]))
    pr = problem([pv, load], [1.0], export_prices=[0.4], nodes=(("n", 1e4, 50.0),))
    dm = solve(pr)
    assert dm.objective_cny == pytest.approx(-50 * 0.4, rel=OBJ_TOL)
    caps = dm.setpoints(1)["pv"]
    assert caps[0, 0] == pytest.approx(80.0, abs=1e-2)
    # Add a 10 kW battery and a premium on using green power: the battery absorbs
    # 10 kW, so only 10 kW are curtailed.
    pr = problem([pv, load, battery(h=1, e_max=100.0)], [1.0], export_prices=[0.4], nodes=(("n", 1e4, 50.0),))
    dm = solve(pr, Weights(0.0, 0.05, 100.0))
    assert dm.objective_cny == pytest.approx(-50 * 0.4 - 0.05 * 90, rel=OBJ_TOL)
    assert dm.setpoints(1)["pv"][0, 0] == pytest.approx(90.0, abs=1e-2)
    np.testing.assert_allclose(dm.setpoints(1)["bat"], [[-10.0]], atol=X_TOL)


def test_no_curtailment_cap_when_everything_fits():
    pv = CurtailableSource("pv", "n", np.array([[10.0]]))
    pr = problem([pv, FixedProfile("load", "n", np.array([-30.0]))], [1.0])
    assert np.isinf(solve(pr).setpoints(1)["pv"]).all()


def thermal(a, b, d, t0, tmin, tmax, p_max=10.0, cost=1000.0):
    h = len(d)
    row = lambda x: np.broadcast_to(np.asarray(x, float), (h,))[None, :].copy()  # noqa: E731
    return Thermal("bldg", "n", row(a), row(b), row(d), np.array([t0]), row(p_max), row(tmin), row(tmax),
                   np.array([cost]))


def test_precooling_moves_cooling_to_the_cheap_block():
    # No decay (a = 1), 1 K per kW of cooling, +2 K of heat gain per block, band 22..26, start 24.
    # Cheapest: cool 2 kW in the cheap first block (T 24 -> 24), none in the dear one (-> 26).
    th = thermal(a=1.0, b=-1.0, d=[2.0, 2.0], t0=24.0, tmin=22.0, tmax=26.0)
    dm = solve(problem([th], [0.5, 2.0]))
    assert dm.objective_cny == pytest.approx(2 * 0.5, rel=OBJ_TOL)
    np.testing.assert_allclose(dm.setpoints(2)["bldg"], [[-2.0, 0.0]], atol=X_TOL)


def test_discomfort_slack_is_used_only_when_cooling_cannot_keep_up():
    # +5 K per block but only 1 kW (1 K) of cooling: 26 + 4 = 30 K over 26 after block 1 ... by hand:
    # T1 = 24 + 5 - 1 = 28 (2 K over), T2 = 28 + 5 - 1 = 32 (6 K over): 8 K h at 1000 CNY/(K h).
    th = thermal(a=1.0, b=-1.0, d=[5.0, 5.0], t0=24.0, tmin=22.0, tmax=26.0, p_max=1.0)
    dm = solve(problem([th], [1.0, 1.0]))
    assert dm.objective_cny == pytest.approx(2 * 1.0 + 8 * 1000.0, rel=OBJ_TOL)


def test_import_limit_slack_keeps_an_impossible_window_feasible():
    pr = problem([FixedProfile("load", "n", np.array([-120.0]))], [1.0], nodes=(("n", 100.0, 0.0),))
    dm = solve(pr)
    assert dm.objective_cny == pytest.approx(120 * 1.0 + 20 * NO_EXTRAS.limit_violation_cny_per_kwh, rel=OBJ_TOL)


def test_node_settlement_bills_each_node_while_vpp_settlement_nets_them():
    # Node a exports 10 kW of PV, node b imports 10 kW.  VPP settlement nets to zero.
    pv = CurtailableSource("pv", "a", np.array([[10.0]]))
    load = FixedProfile("load", "b", np.array([-10.0]))
    nodes = (("a", 1e3, 1e3), ("b", 1e3, 1e3))
    vpp = solve(problem([pv, load], [1.0], export_prices=[0.4], nodes=nodes, settlement="vpp"))
    node = solve(problem([pv, load], [1.0], export_prices=[0.4], nodes=nodes, settlement="node"))
    assert vpp.objective_cny == pytest.approx(0.0, abs=1e-6)
    assert node.objective_cny == pytest.approx(10 * 1.0 - 10 * 0.4, rel=OBJ_TOL)


# -- an independent formulation of storage + curtailable + fixed on one node ----------

def linprog_optimum(st_forms, pv_max, fixed, price, price_exp, imp_lim, exp_lim, dt):
    """min sum dt (price imp - price_exp exp) + shortfall + throughput, written by hand for scipy."""
    H, N = len(price), len(st_forms)
    # columns: pc[i,t], pd[i,t], e[i,1..H], u[i], pv[t], imp[t], exp[t]
    n_pc = N * H
    c_pc, c_pd, c_e, c_u = 0, n_pc, 2 * n_pc, 3 * n_pc
    c_pv, c_imp, c_exp = c_u + N, c_u + N + H, c_u + N + 2 * H
    n = c_exp + H
    cost = np.zeros(n)
    lo, hi = np.zeros(n), np.full(n, np.inf)
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    for i, f in enumerate(st_forms):
        for t in range(H):
            pc, pd, e = c_pc + i * H + t, c_pd + i * H + t, c_e + i * H + t
            hi[pc], hi[pd] = f.p_charge_max_kw[0, t], f.p_discharge_max_kw[0, t]
            lo[e], hi[e] = f.e_min_kwh[0, t], f.e_max_kwh[0, t]
            cost[pc] = cost[pd] = f.throughput_cost_cny_per_kwh[0] * dt[t]
            row = np.zeros(n)
            row[e], row[pc], row[pd] = 1.0, -f.eta_charge[0] * dt[t], dt[t] / f.eta_discharge[0]
            rhs = 0.0
            if t == 0:
                rhs = f.e_init_kwh[0]
            else:
                row[e - 1] = -1.0
            a_eq.append(row)
            b_eq.append(rhs)
        cost[c_u + i] = f.shortfall_cost_cny_per_kwh[0]
        row = np.zeros(n)
        row[c_e + i * H + H - 1], row[c_u + i] = -1.0, -1.0
        a_ub.append(row)
        b_ub.append(-f.e_target_kwh[0])
    for t in range(H):
        hi[c_pv + t], hi[c_imp + t], hi[c_exp + t] = pv_max[t], imp_lim, exp_lim
        cost[c_imp + t], cost[c_exp + t] = price[t] * dt[t], -price_exp[t] * dt[t]
        row = np.zeros(n)
        for i in range(N):
            row[c_pd + i * H + t], row[c_pc + i * H + t] = 1.0, -1.0
        row[c_pv + t], row[c_imp + t], row[c_exp + t] = 1.0, 1.0, -1.0
        a_eq.append(row)
        b_eq.append(-fixed[t])
    res = linprog(cost, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.array(a_eq), b_eq=b_eq,
                  bounds=list(zip(lo, hi, strict=True)), method="highs")
    assert res.status == 0
    return res.fun


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_matches_an_independent_lp_on_random_instances(data):
    h = data.draw(st.integers(2, 6))
    n = data.draw(st.integers(1, 3))
    rnd = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dt = np.ones(h)
    forms = []
    for i in range(n):
        p = rnd.uniform(1, 20)
        e_max = rnd.uniform(5, 50)
        e0 = rnd.uniform(0, e_max)
        one = np.ones((1, h))
        forms.append(StorageLike(f"s{i}", "n", p * one, p * one * rnd.integers(0, 2), 0 * one, e_max * one,
                                 np.array([e0]), np.array([rnd.uniform(0, e_max)]), np.array([rnd.uniform(0.8, 1)]),
                                 np.array([rnd.uniform(0.8, 1)]), np.array([0.0]), np.array([rnd.uniform(1, 5)]),
                                 np.array([rnd.uniform(0, 0.1)])))
    pv = rnd.uniform(0, 60, h)
    fixed = -rnd.uniform(0, 50, h)
    price, price_exp = rnd.uniform(0.2, 1.6, h), rnd.uniform(0.0, 0.2, h)
    imp_lim, exp_lim = 500.0, rnd.uniform(0, 30)
    pr = DispatchProblem(grid(h), (NodeLimits("n", imp_lim, exp_lim),),
                         tuple(forms) + (CurtailableSource("pv", "n", pv[None, :]), FixedProfile("l", "n", fixed)),
                         price, price_exp, np.zeros(h), np.zeros(1), 0.0, "vpp")
    ours = solve(pr).objective_cny
    ref = linprog_optimum(forms, pv, fixed, price, price_exp, imp_lim, exp_lim, dt)
    assert ours == pytest.approx(ref, rel=1e-5, abs=1e-4)


def two_state_thermal(g, r, n=2):
    """Air and mass states coupled, discretised by hand with a small explicit step."""
    h = g.n_blocks
    a = np.zeros((n, h, 2, 2))
    for t, dt in enumerate(g.dt_h):
        k_am, k_ao, k_mo = 2.0 * dt, 0.5 * dt, 0.05 * dt      # fractions exchanged per block (stable: < 1)
        a[:, t] = [[1 - k_am - k_ao, k_am], [0.2 * k_am, 1 - 0.2 * k_am - k_mo]]
    b = np.zeros((n, h, 2))
    b[:, :, 0] = -r.uniform(0.002, 0.004, (n, h)) * g.dt_h
    d = np.stack([0.5 * g.dt_h * 31 * np.ones((n, h)), 0.05 * g.dt_h * 31 * np.ones((n, h))], axis=-1)
    return Thermal("b2", "m", a, b, d, r.uniform(24, 26, (n, 2)), 200 * np.ones((n, h)), 24 * np.ones((n, h)),
                   26 * np.ones((n, h)), np.full(n, 200.0))


def test_two_state_thermal_by_hand():
    # Mass state fixed (A row [0, 1]) and read by the air: T_air' = 0.5 T_air + 0.5 T_mass - 1 p + 2.
    # T_air0 = 24, T_mass = 26: free T_air1 = 12 + 13 + 2 = 27 -> 1 kW of cooling keeps 26 (price 1).
    th = Thermal("b", "n", np.array([[[[0.5, 0.5], [0.0, 1.0]]]]), np.array([[[-1.0, 0.0]]]),
                 np.array([[[2.0, 0.0]]]), np.array([[24.0, 26.0]]), np.array([[10.0]]), np.array([[22.0]]),
                 np.array([[26.0]]), np.array([1000.0]))
    dm = solve(problem([th], [1.0]))
    assert dm.objective_cny == pytest.approx(1.0, rel=OBJ_TOL)
    np.testing.assert_allclose(dm.setpoints(1)["b"], [[-1.0]], atol=X_TOL)


def test_rolling_update_equals_a_fresh_build():
    """Updating the persistent model gives the same optimum as building the new window anew."""
    rnd = np.random.default_rng(7)
    g = HorizonGrid(0, np.array([1, 1, 1, 1, 4, 4]), 0.25)
    h = g.n_blocks

    def window(seed):
        r = np.random.default_rng(seed)
        one = np.ones((2, h))
        st_ = StorageLike("bat", "n", 50 * one, 50 * one, 10 * one, 90 * one, r.uniform(10, 90, 2),
                          np.array([50.0, 50.0]), np.array([0.95, 0.9]), np.array([0.95, 0.9]),
                          np.array([1e-3, 0.0]), np.array([1.5, 1.5]), np.array([0.05, 0.05]))
        a = np.exp(-g.dt_h / 10.0)[None, :].repeat(3, 0)
        # the b coefficient (a COP following the forecast weather) changes from window to window
        th = Thermal("b", "m", a, -r.uniform(0.005, 0.02, (3, h)) * (1 - a), (1 - a) * r.uniform(28, 33, (3, h)),
                     r.uniform(24, 26, 3), 100 * np.ones((3, h)), 24 * np.ones((3, h)), 26 * np.ones((3, h)),
                     np.full(3, 200.0))
        th2 = two_state_thermal(g, r)
        pv = CurtailableSource("pv", "m", r.uniform(0, 300, (4, h)))
        return DispatchProblem(g, (NodeLimits("n", 500, 100), NodeLimits("m", 800, 50)),
                               (st_, th, th2, pv, FixedProfile("l", "m", -r.uniform(100, 400, h))),
                               r.uniform(0.3, 1.5, h), np.full(h, 0.4155), r.uniform(0.5, 0.6, h),
                               np.array([r.uniform(0, 300)]), 30.0, "vpp")

    first = DispatchModel(window(1), Weights())
    first.solve()
    for seed in (2, 3, 4):
        pr = window(seed)
        first.update(pr)
        assert first.solve()[0] == "optimal"
        fresh = DispatchModel(pr, Weights())
        fresh.solve()
        assert first.objective_cny == pytest.approx(fresh.objective_cny, rel=OBJ_TOL)
    del rnd


def test_efficiency_may_vary_by_block():
    # Charge 10 kWh into the store in block 0 at eta 0.5 (costs 20 kWh at price 1),
    # or in block 1 at eta 1.0 (costs 10 kWh at price 1.5): block 1 is cheaper (15 < 20).
    one = np.ones((1, 2))
    st_ = StorageLike("s", "n", 100 * one, 0 * one, 0 * one, 100 * one, np.array([0.0]), np.array([10.0]),
                      np.array([[0.5, 1.0]]), np.array([1.0]), np.array([0.0]), np.array([100.0]), np.array([0.0]))
    dm = solve(problem([st_], [1.0, 1.5]))
    assert dm.objective_cny == pytest.approx(15.0, rel=OBJ_TOL)
    np.testing.assert_allclose(dm.setpoints(2)["s"], [[0.0, -10.0]], atol=X_TOL)


def test_a_reachable_deadline_inside_the_horizon_binds():
    # 10 kWh are due by the end of block 1 (e_min jumps from 0 to 10), 5 kW per block, no
    # terminal target: both blocks 0 and 1 must charge, although block 2 would be cheapest.
    one = np.ones((1, 3))
    e_min = np.array([[0.0, 10.0, 10.0]])
    st_ = StorageLike("s", "n", 5 * one, 0 * one, e_min, 20 * one, np.array([0.0]), np.array([0.0]),
                      np.array([1.0]), np.array([1.0]), np.array([0.0]), np.array([100.0]), np.array([0.0]))
    dm = solve(problem([st_], [1.0, 2.0, 0.1]))
    np.testing.assert_allclose(dm.setpoints(3)["s"], [[-5.0, -5.0, 0.0]], atol=X_TOL)
    assert dm.objective_cny == pytest.approx(5 * 1.0 + 5 * 2.0, rel=OBJ_TOL)


def test_an_unreachable_bound_is_widened_just_enough():
    # 30 kWh due by block 2 with 5 kW: at most 10 kWh reachable; the LP stays feasible
    # and charges at full power from the start.
    one = np.ones((1, 2))
    st_ = StorageLike("s", "n", 5 * one, 0 * one, np.array([[0.0, 30.0]]), 40 * one, np.array([0.0]),
                      np.array([0.0]), np.array([1.0]), np.array([1.0]), np.array([0.0]), np.array([100.0]),
                      np.array([0.0]))
    dm = solve(problem([st_], [1.0, 1.0]))
    np.testing.assert_allclose(dm.setpoints(2)["s"], [[-5.0, -5.0]], atol=X_TOL)


def test_slack_use_is_reported():
    # 120 kW of load behind a 100 kW import limit: 20 kWh of import slack in one hour
    pr = problem([FixedProfile("load", "n", np.array([-120.0]))], [1.0], nodes=(("n", 100.0, 0.0),))
    use = solve(pr).slack_use()
    assert use["slack_import_kwh"] == pytest.approx(20.0, rel=1e-5)
    assert use["slack_export_kwh"] == pytest.approx(0.0, abs=1e-5)


def with_grid(pr, **kw):
    from dataclasses import replace

    return replace(pr, **kw)


def test_vpp_import_limit_across_nodes():
    # two nodes import 60 kW each (node limits 100 kW): the VPP limit of 100 kW is exceeded by 20
    loads = [FixedProfile("a_load", "a", np.array([-60.0])), FixedProfile("b_load", "b", np.array([-60.0]))]
    pr = problem(loads, [1.0], nodes=(("a", 100.0, 0.0), ("b", 100.0, 0.0)))
    dm = solve(with_grid(pr, vpp_import_limit_kw=100.0))
    assert dm.objective_cny == pytest.approx(120 * 1.0 + 20 * NO_EXTRAS.limit_violation_cny_per_kwh, rel=OBJ_TOL)
    # a battery at node a covers the excess instead (and, its energy being free, discharges fully)
    pr = problem(loads + [battery(p_kw=30.0, e_max=50.0, e0=40.0, h=1, node="a")], [1.0],
                 nodes=(("a", 100.0, 0.0), ("b", 100.0, 0.0)))
    dm = solve(with_grid(pr, vpp_import_limit_kw=100.0))
    assert dm.setpoints(1)["bat"][0, 0] == pytest.approx(30.0, abs=1e-3)
    assert dm.objective_cny == pytest.approx(90.0, rel=OBJ_TOL)
    assert dm.slack_use()["slack_import_kwh"] == pytest.approx(0.0, abs=1e-4)


def test_ramp_limit_spreads_a_step_change():
    # net import was 0; a 100 kW load appears; ramp limit 50 kW/h: the battery (which must end
    # where it started, shortfall 50 CNY/kWh) covers 50 kW in the first one-hour block, then the
    # import may rise by 50 kW/h to 100 kW.
    pr = problem([FixedProfile("load", "n", np.array([-100.0, -100.0])),
                  battery(p_kw=100.0, e_max=100.0, e0=80.0, target=80.0)], [1.0, 1.0])
    dm = solve(with_grid(pr, ramp_limit_kw_per_h=50.0, net_import_prev_kw=0.0))
    np.testing.assert_allclose(dm.setpoints(2)["bat"][0], [50.0, 0.0], atol=1e-3)


def test_export_penalty_keeps_green_power_local():
    # 50 kW of PV surplus, export earns 0.1: a penalty of 0.2 CNY/kWh on export (and a small
    # premium on not curtailing) makes storing the surplus the cheapest use of it.
    pv = CurtailableSource("pv", "n", np.array([[50.0]]))
    bat = battery(p_kw=50.0, e_max=100.0, e0=0.0, h=1)
    pr = problem([pv, bat], [1.0], export_prices=[0.1])
    dm = solve(pr, Weights(0.0, 0.05, 100.0, export_penalty_cny_per_kwh=0.2))
    np.testing.assert_allclose(dm.setpoints(1)["bat"], [[-50.0]], atol=1e-3)


def test_energy_cost_weight_zero_dispatches_on_carbon_alone():
    # prices favour block 1, carbon favours block 0: with the tariff weighted 0, carbon decides
    bat_target = battery(p_kw=10.0, e_max=20.0, e0=0.0, target=10.0)
    pr = DispatchProblem(grid(2), (NodeLimits("n", 1e4, 1e4),), (bat_target,), np.array([2.0, 1.0]),
                         np.zeros(2), np.array([0.4, 0.9]), np.zeros(1), 0.0, "vpp")
    dm = solve(pr, Weights(carbon_price_cny_per_t=100.0, curtailment_penalty_cny_per_kwh=0.0,
                           limit_violation_cny_per_kwh=100.0, energy_cost_weight=0.0))
    np.testing.assert_allclose(dm.setpoints(2)["bat"], [[-10.0, 0.0]], atol=1e-3)


def test_no_profit_from_buying_and_selling_at_once():
    # import costs 0.3, export earns 0.4: with no load and no assets the optimum is zero
    # (the settled net exchange is zero), not a fictitious profit on buy = sell > 0.
    pr = problem([FixedProfile("load", "n", np.array([0.0]))], [0.3], export_prices=[0.4])
    dm = solve(pr)
    assert dm.objective_cny == pytest.approx(0.0, abs=1e-6)


VALLEY, FEED_IN = 0.3, 0.4155        # CNY/kWh: selling earns more than buying costs


def valley(load_kw, e0, price_2):
    """Two one-hour blocks, the first in the valley (import 0.3, export 0.4155), the
    second at *price_2* with a 10 kW load; a lossless 10 kW / 10 kWh battery."""
    forms = [battery(p_kw=10.0, e_max=10.0, e0=e0), FixedProfile("load", "n", np.array([-load_kw, -10.0]))]
    return problem(forms, [VALLEY, price_2], export_prices=[FEED_IN, 0.0])


def test_the_plan_is_priced_by_the_bill_where_selling_beats_buying():
    """A full battery, a 5 kW load in the valley and a cheap second hour (0.2): the
    bill's optimum discharges all 10 kWh now, selling 5 at the feed-in price and
    buying the second hour's 10 kWh: -5 x 0.4155 + 10 x 0.2 = -0.0775 CNY.  Valuing
    export at the import cost (the old plan) would keep 5 kWh instead (cost 1.0).
    The expected import in the valley is wrong here, so the choice is flipped."""
    dm = solve(valley(5.0, 10.0, 0.2))
    assert dm.objective_cny == pytest.approx(-5 * FEED_IN + 10 * 0.2, rel=OBJ_TOL, abs=1e-5)
    np.testing.assert_allclose(dm.setpoints(2)["bat"], [[10.0, 0.0]], atol=1e-3)


def test_the_sign_search_is_a_local_optimum_and_the_mip_a_global_one():
    """The same with the second hour at 0.35: keeping the battery for it (cost 5 x 0.3
    = 1.5) is the best plan that imports in the valley, and moving away from it by a
    little costs more, so the sign search stops there; selling 5 kWh now and buying
    the second hour (-5 x 0.4155 + 10 x 0.35 = 1.4225) is better, which HiGHS's MIP
    over the buy-or-sell choice finds."""
    local = solve(valley(5.0, 10.0, 0.35))
    assert local.objective_cny == pytest.approx(5 * VALLEY, rel=OBJ_TOL)
    mip = DispatchModel(valley(5.0, 10.0, 0.35), NO_EXTRAS, SolverOptions(settlement_choice="mip"))
    assert mip.solve()[0] == "optimal"
    assert mip.objective_cny == pytest.approx(-5 * FEED_IN + 10 * 0.35, rel=OBJ_TOL)


def test_the_time_limit_applies_to_each_solve_not_to_all_of_them():
    # HiGHS sums run time over the solves of one model; a persistent model with a fixed
    # limit would, after enough windows, stop every solve.  With a 20 ms limit, 300 quick
    # re-solves (far more than 20 ms in total) must all finish.
    from vpp.optimizer.lp import SolverOptions

    pr = problem([battery(), FixedProfile("load", "n", np.array([-10.0, -10.0]))], [1.0, 2.0])
    dm = DispatchModel(pr, NO_EXTRAS, SolverOptions(time_limit_s=0.02))
    for _ in range(300):
        dm.update(pr)
        assert dm.solve()[0].startswith("optimal")
    assert dm.lp.highs.getRunTime() > 0.02


def test_extra_constraints_hook_reaches_the_solve():
    """A user's constraint on the builders' variables binds: the arbitrage of the
    first test, with charging capped at 4 kW by the hook, saves 4 CNY instead of 10."""
    pr = problem([battery(), FixedProfile("load", "n", np.array([-10.0, -10.0]))], [1.0, 2.0])

    def cap_charge(m, _problem):
        m.cap = Constraint(expr=m.st_pc[0, 0] <= 4.0)

    dm = DispatchModel(pr, NO_EXTRAS, extra_constraints=cap_charge)
    assert dm.solve()[0] == "optimal"
    assert dm.objective_cny == pytest.approx(26.0, rel=OBJ_TOL)
    np.testing.assert_allclose(dm.setpoints(2)["bat"], [[-4.0, 4.0]], atol=X_TOL)


def test_a_hook_may_deactivate_a_builder_row():
    """Dropping the battery's energy balance for block 1 (a row of a matrix
    constraint) lets it discharge energy it never stored: a free 10 kWh."""
    pr = problem([battery(e0=0.0), FixedProfile("load", "n", np.array([-10.0, -10.0]))], [1.0, 2.0])
    dm = DispatchModel(pr, NO_EXTRAS, extra_constraints=lambda m, _: m.st_dyn[1].deactivate())
    assert dm.solve()[0] == "optimal"
    assert dm.objective_cny == pytest.approx(10.0, rel=OBJ_TOL)


def test_matrix_rows_equal_the_rows_written_as_expressions():
    """``MatrixRows`` (arrays into a Pyomo MatrixConstraint) against the same
    rows written term by term, through Pyomo's own compiler."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    where = rng.random((3, 4)) < 0.5
    lo, hi = rng.normal(size=(3, 4)), np.where(rng.random((3, 4)) < 0.3, np.inf, 5.0)
    lo[0, 0] = hi[0, 0] = 1.5

    def model(as_matrix):
        m = ConcreteModel()
        m.x = Var(range(3), range(5))
        m.y = Var(range(4))
        if as_matrix:
            at = np.arange(15).reshape(3, 5)
            MatrixRows(m.x, m.y).add(m, "r", (3, 4), [(m.x, at[:, 1:], a), (m.y, np.arange(4), b, where)], lo, hi)
        else:
            def rule(_, i, t):
                body = a[i, t] * m.x[i, t + 1] + (b[i, t] * m.y[t] if where[i, t] else 0.0)
                if lo[i, t] == hi[i, t]:
                    return body == lo[i, t]
                return (lo[i, t], body, None if np.isinf(hi[i, t]) else hi[i, t])
            m.r = Constraint(range(3), range(4), rule=rule)
        m.o = Objective(expr=sum(m.x.values()) + sum(m.y.values()))
        info = LinearStandardFormCompiler().write(m, mixed_form=True)
        names = [v.name for v in info.columns]
        return {(row.constraint.index() if as_matrix else row.constraint.index()[0] * 4 + row.constraint.index()[1],
                 row.bound_type, info.rhs[k]): {n: info.A[k, j] for j, n in enumerate(names) if info.A[k, j]}
                for k, row in enumerate(info.rows)}

    ours, ref = model(True), model(False)
    assert ours.keys() == ref.keys()
    for key, coefs in ref.items():
        assert ours[key] == pytest.approx(coefs), key


def test_storage_forms_stack_row_wise():
    """StorageLike.stack keeps each form's rows in order; an efficiency per asset in one
    form and per block in the other is broadcast per block."""
    a = battery(eta=0.9, h=3, fleet="f")
    one = np.ones((2, 3))
    per_block = StorageLike("f", "n", one, 0 * one, 0 * one, 5 * one, np.zeros(2), np.ones(2),
                            np.array([[0.5, 0.6, 0.7], [0.8, 0.9, 1.0]]), np.ones(2), np.zeros(2), np.ones(2),
                            np.zeros(2))
    s = StorageLike.stack(a, per_block)
    assert s.n_assets == 3 and StorageLike.stack(a) is a
    np.testing.assert_array_equal(s.eta_charge, [[0.9, 0.9, 0.9], [0.5, 0.6, 0.7], [0.8, 0.9, 1.0]])
    np.testing.assert_array_equal(s.eta_discharge, [0.9, 1.0, 1.0])
    np.testing.assert_array_equal(s.e_max_kwh, [[20.0] * 3, [5.0] * 3, [5.0] * 3])
    np.testing.assert_array_equal(s.e_target_kwh, [0.0, 1.0, 1.0])
