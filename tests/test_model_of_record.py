"""The Pyomo model is the model of record: at every window it holds what HiGHS solves.

Each window's model is written out with Pyomo's LP writer and solved by HiGHS
from the file, and solved again through Pyomo's own HiGHS interface; both must
give the persistent fast path's objective.  Hooks act on every window, values
and duals are readable from the model, integer variables are solved as a MIP,
and a maximised objective keeps its sign.
"""

import highspy
import numpy as np
import pytest
from conftest import scenario
from hypothesis import given, settings
from hypothesis import strategies as st
from pyomo.environ import Constraint, NonNegativeIntegers, Objective, Reals, SolverFactory, Suffix, Var, maximize
from test_optimizer import NO_EXTRAS, battery, problem

import vpp
from vpp.dispatch import DispatchProblem, NodeLimits
from vpp.dr import DREvent, SettlementBand
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, SharedLimit, StorageLike, Thermal
from vpp.optimizer.lp import new_highs
from vpp.optimizer.model import DispatchModel, Weights

REL = 1e-6          # the tolerance between the fast path and the model written out
DUAL_TOL = 1e-5     # CNY/kWh; interior point without crossover


def lp_file_optimum(model, tmp_path) -> float:
    """Write *model* with Pyomo's LP writer and solve the file with HiGHS (simplex)."""
    path = tmp_path / "window.lp"
    model.write(str(path), io_options={"symbolic_solver_labels": True})
    h = new_highs()
    h.setOptionValue("output_flag", False)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value


def pyomo_highs_optimum(model) -> float:
    """Solve *model* through Pyomo's own HiGHS interface (pyomo.contrib.solver), loading nothing back."""
    res = SolverFactory("highs").solve(model, load_solutions=False)
    assert str(res.solver.termination_condition) == "optimal"
    return res.problem.lower_bound if model.objective.sense == 1 else res.problem.upper_bound


def calls(r: np.random.Generator, n_steps: int) -> tuple[DREvent, ...]:
    """A peak-shaving and a valley-filling call at random steps of the window."""
    out = []
    for kind in ("peak_shaving", "valley_filling"):
        start = int(r.integers(0, n_steps - 1))
        end = int(r.integers(start + 1, n_steps + 1))
        out.append(DREvent(kind, kind, 0, start, end, r.uniform(10, 200), r.uniform(0.5, 3.0), "pre_event",
                           SettlementBand(paid_max_frac=r.uniform(1.0, 1.5)), r.uniform(-200, 600, end - start)))
    if out[1].start_step < out[0].end_step and out[0].start_step < out[1].end_step:
        out.pop()                                       # one call at a time
    return tuple(out)


def window(seed: int, limits: bool, ramp: bool, settlement: str, dr: bool = False) -> DispatchProblem:
    """A random window of a fixed structure: two nodes, batteries on a shared
    connection, an EV-like store, one- and two-state buildings, PV, loads, and
    with *dr* demand-response calls; the numbers change with *seed*."""
    r = np.random.default_rng(seed)
    g = HorizonGrid(0, np.array([1, 1, 1, 1, 4, 4]), 0.25)
    h = g.n_blocks
    one = np.ones((2, h))
    bat = StorageLike("bat", "n", r.uniform(20, 60) * one, r.uniform(20, 60) * one, 10 * one, 90 * one,
                      r.uniform(10, 90, 2), r.uniform(10, 90, 2), r.uniform(0.85, 0.98, 2),
                      r.uniform(0.85, 0.98, 2), np.array([1e-3, 0.0]), np.array([1.5, 1.5]), r.uniform(0, 0.1, 2))
    e_min = np.cumsum(r.uniform(0, 5, (1, h)), axis=1)
    ev = StorageLike("ev", "m", np.full((1, h), 11.0), np.zeros((1, h)), e_min, e_min + 40.0, np.zeros(1),
                     np.array([e_min[0, -1]]), np.array([0.92]), np.array([1.0]), np.zeros(1), np.array([2.0]),
                     np.zeros(1))
    a = np.exp(-g.dt_h / 10.0)[None, :].repeat(3, 0)
    th = Thermal("b", "m", a, -r.uniform(0.005, 0.02, (3, h)) * (1 - a), (1 - a) * r.uniform(28, 33, (3, h)),
                 r.uniform(24, 26, 3), 100 * np.ones((3, h)), 24 * np.ones((3, h)), 26 * np.ones((3, h)),
                 np.full(3, 200.0))
    pv = CurtailableSource("pv", "m", r.uniform(0, 300, (4, h)))
    nodes = (NodeLimits("n", 500, 100), NodeLimits("m", 800, r.uniform(0, 80)))
    peak = np.array([r.uniform(0, 300)]) if settlement == "vpp" else r.uniform(0, 300, 2)
    shared = SharedLimit("bat", "n", np.array([0, 0]), r.uniform(20, 80, (1, h)), r.uniform(20, 80, (1, h)))
    return DispatchProblem(g, nodes, (bat, shared, ev, th, pv, FixedProfile("l", "m", -r.uniform(100, 400, h))),
                           r.uniform(0.3, 1.5, h), r.uniform(0.2, 0.5, h), r.uniform(0.5, 0.6, h), peak, 30.0,
                           settlement, vpp_import_limit_kw=r.uniform(300, 900) if limits else np.inf,
                           vpp_export_limit_kw=r.uniform(0, 50) if limits else np.inf,
                           ramp_limit_kw_per_h=r.uniform(200, 2000) if ramp else np.inf,
                           net_import_prev_kw=r.uniform(0, 500), dr_events=calls(r, g.n_steps) if dr else ())


def window_cap(m, pr):
    """A hook whose bound depends on the window: charging of battery 0 in block 0
    capped at a tenth of the window's first import price x 100 kW."""
    m.cap = Constraint(expr=m.st_pc[0, 0] <= 10.0 * pr.price_import_cny_per_kwh[0])


@settings(max_examples=12, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**31), min_size=2, max_size=4), limits=st.booleans(), ramp=st.booleans(),
       settlement=st.sampled_from(["vpp", "node"]), hook=st.booleans(), dr=st.booleans())
def test_every_window_of_the_model_written_out_gives_the_persistent_optimum(
        tmp_path_factory, seeds, limits, ramp, settlement, hook, dr):
    tmp_path = tmp_path_factory.mktemp("lp")
    dm = None
    for seed in seeds:
        pr = window(seed, limits, ramp, settlement, dr)
        if dm is None:
            dm = DispatchModel(pr, Weights(), extra_constraints=window_cap if hook else None)
        else:
            dm.update(pr)
        assert dm.solve()[0] == "optimal"
        ours = dm.objective_cny
        assert lp_file_optimum(dm.model, tmp_path) == pytest.approx(ours, rel=REL, abs=1e-6)
        assert pyomo_highs_optimum(dm.model) == pytest.approx(ours, rel=REL, abs=1e-6)


def test_a_window_dependent_hook_moves_with_the_window():
    """The issue's reproduction: a cap that should move from 5 to 1 kW must not keep
    the first window's bound.  Arbitrage 1 -> 2 CNY/kWh: every kWh charged in
    block 0 saves 1 CNY, so the objective is 20 - cap + 2 * 10 - ... by hand:
    cost = 1 * (10 + c) + 2 * (10 - c) = 30 - c."""
    pr = problem([battery(), FixedProfile("load", "n", np.array([-10.0, -10.0]))], [1.0, 2.0])
    caps = iter([5.0, 1.0])
    current = {}

    def hook(m, _pr):
        current["cap"] = next(caps)
        m.cap = Constraint(expr=m.st_pc[0, 0] <= current["cap"])

    dm = DispatchModel(pr, NO_EXTRAS, extra_constraints=hook)
    dm.solve()
    assert dm.objective_cny == pytest.approx(25.0, rel=1e-6)
    dm.update(pr)
    dm.solve()
    assert current["cap"] == 1.0
    assert dm.objective_cny == pytest.approx(29.0, rel=1e-6)
    assert dm.model.cap.upper == 1.0


def test_a_window_without_a_hook_updates_the_pyomo_model_in_place():
    """The fast path: no rebuild, yet the model read after an update carries the new
    window's numbers (bounds, right-hand sides, coefficients, costs)."""
    a, b = window(1, True, True, "vpp"), window(2, True, True, "vpp")
    dm = DispatchModel(a, Weights())
    model = dm.model
    dm.update(b)
    assert dm.model is model
    fresh = DispatchModel(b, Weights())
    for name in ("st_e", "st_pc", "th_p", "th_T", "cu_p", "peak"):
        ours = [v.bounds for v in getattr(dm.model, name).values()]
        assert ours == [v.bounds for v in getattr(fresh.model, name).values()], name
    for name in ("st_dyn", "st_target", "th_dyn", "th_hi", "th_lo", "balance", "vpp_imp", "vpp_exp",
                 "ramp_up", "ramp_dn"):
        ours = [(c.lb, c.ub, str(c.body)) for c in getattr(dm.model, name).values()]
        assert ours == [(c.lb, c.ub, str(c.body)) for c in getattr(fresh.model, name).values()], name
    assert str(dm.model.objective.expr) == str(fresh.model.objective.expr)


def test_the_solution_is_read_from_the_pyomo_model():
    """After an update and a solve, the variables hold the window's solution."""
    dm = DispatchModel(window(4, False, False, "vpp"), Weights())
    dm.solve()
    dm.update(window(5, False, False, "vpp"))
    dm.solve()
    m = dm.model
    np.testing.assert_allclose([v.value for v in dm.lp.columns], dm.lp.x)
    np.testing.assert_allclose(-np.array([[m.st_pc[i, t].value for t in range(4)] for i in range(2)])
                               + np.array([[m.st_pd[i, t].value for t in range(4)] for i in range(2)]),
                               dm.setpoints(4)["bat"], atol=1e-9)


def limited_node():
    """One-hour blocks, a 10 kW load at a node whose import limit is 4 kW (unique duals)."""
    return problem([FixedProfile("load", "n", np.array([-10.0, -10.0]))], [1.0, 2.0], nodes=(("n", 4.0, 1e4),))


def test_duals_are_read_from_the_pyomo_model_with_pyomos_sign():
    """``model.dual`` holds every row's dual, as Pyomo's own HiGHS interface
    reports it for the same model."""
    dm = DispatchModel(limited_node(), NO_EXTRAS)
    dm.solve()
    ref = DispatchModel(limited_node(), NO_EXTRAS).model
    ref.del_component("dual")
    ref.dual = Suffix(direction=Suffix.IMPORT)
    SolverFactory("highs").solve(ref)
    rows = [c for name in ("balance", "settle", "peak_def") for c in getattr(ref, name).values()]
    for c in rows:
        assert dm.model.dual[dm.model.find_component(c.name)] == pytest.approx(ref.dual[c], abs=DUAL_TOL), c.name
    assert any(abs(ref.dual[c]) > 1 for c in rows)          # not a comparison of zeros


def test_shadow_prices_by_hand():
    """The limited node: the VPP's settled energy costs the tariff (1 and 2 CNY/kWh), the node's energy the tariff
    plus the 100 CNY/kWh penalty on exceeding its limit."""
    dm = DispatchModel(limited_node(), NO_EXTRAS)
    assert dm.solve()[0] == "optimal"
    prices = dm.shadow_prices()
    np.testing.assert_allclose(prices["vpp"], [1.0, 2.0], atol=DUAL_TOL)
    np.testing.assert_allclose(prices["node_n"], [101.0, 102.0], atol=DUAL_TOL)


def test_shadow_price_where_storage_sets_it():
    """A lossless 10 kW / 20 kWh battery between prices 1 and 3 with 5 kW of load:
    while it has spare power in both blocks, one more kWh in either block is bought
    at 1 CNY (charged at the cheap hour), so both blocks' price is 1."""
    pr = problem([battery(), FixedProfile("load", "n", np.array([-5.0, -5.0]))], [1.0, 3.0])
    dm = DispatchModel(pr, NO_EXTRAS)
    dm.solve()
    prices = dm.shadow_prices()
    np.testing.assert_allclose(prices["node_n"], [1.0, 1.0], atol=DUAL_TOL)
    np.testing.assert_allclose(prices["vpp"], [1.0, 1.0], atol=DUAL_TOL)


def transformer_units(domain):
    """A hook: the node's import needs transformer units of 4 kW, each costing 3 CNY."""
    def hook(m, _pr):
        m.units = Var(domain=domain, bounds=(0, 10))
        m.unit_cap = Constraint(expr=m.imp[0, 0] <= 4.0 * m.units)
        m.objective.set_value(m.objective.expr + 3.0 * m.units)
    return hook


def test_integer_variables_are_solved_as_a_mip_not_relaxed():
    """A 10 kW load for one hour at 1 CNY/kWh: whole units need 3 of them (cost
    10 + 9 = 19); the relaxation would take 2.5 (cost 17.5)."""
    pr = problem([FixedProfile("load", "n", np.array([-10.0]))], [1.0])
    dm = DispatchModel(pr, NO_EXTRAS, extra_constraints=transformer_units(NonNegativeIntegers))
    assert dm.lp.is_mip
    assert dm.solve()[0] == "optimal"
    assert dm.objective_cny == pytest.approx(19.0, rel=1e-6)
    assert dm.model.units.value == pytest.approx(3.0, abs=1e-9)
    assert np.isnan(dm.shadow_prices()["vpp"]).all()           # a MIP has no duals
    relaxed = DispatchModel(pr, NO_EXTRAS, extra_constraints=transformer_units(Reals))
    assert not relaxed.lp.is_mip
    assert relaxed.solve()[0] == "optimal"
    assert relaxed.objective_cny == pytest.approx(17.5, rel=1e-6)


def test_a_maximised_objective_keeps_its_sign():
    """A hook that maximises the negated cost: the optimum is minus the minimum cost
    (-20: the 10 kWh arbitrage of ``test_optimizer``'s first test), reported as
    such, and the duals agree with Pyomo's HiGHS interface on the same maximisation."""
    pr = problem([battery(), FixedProfile("load", "n", np.array([-10.0, -10.0]))], [1.0, 2.0])

    def maximise(m, _pr):
        m.objective.deactivate()
        m.profit = Objective(expr=-m.objective.expr, sense=maximize)

    dm = DispatchModel(pr, NO_EXTRAS, extra_constraints=maximise)
    dm.solve()
    assert dm.objective_cny == pytest.approx(-20.0, rel=1e-6)
    assert pyomo_highs_optimum(dm.model) == pytest.approx(-20.0, rel=1e-6)
    dm = DispatchModel(limited_node(), NO_EXTRAS, extra_constraints=maximise)      # unique duals
    dm.solve()
    ref = DispatchModel(limited_node(), NO_EXTRAS, extra_constraints=maximise).model
    ref.del_component("dual")
    ref.dual = Suffix(direction=Suffix.IMPORT)
    SolverFactory("highs").solve(ref)
    for c in dm.model.balance.values():
        assert dm.model.dual[c] == pytest.approx(ref.dual[ref.find_component(c.name)], abs=DUAL_TOL)
        assert dm.model.dual[c] < -100          # the maximisation's sign: more load, less profit


def test_a_second_objective_is_a_one_line_error():
    pr = problem([battery(), FixedProfile("load", "n", np.array([-10.0, -10.0]))], [1.0, 2.0])

    def second(m, _pr):
        m.other = Objective(expr=m.st_pc[0, 0])

    with pytest.raises(ValueError, match=r"exactly one active objective, it has 2 \(objective, other\)") as err:
        DispatchModel(pr, NO_EXTRAS, extra_constraints=second)
    assert "\n" not in str(err.value)


class _StaleModel(DispatchModel):
    """A deliberately broken fast path: HiGHS gets the new window, the Pyomo model never does."""

    @property
    def model(self):
        return self._model


def test_the_comparison_catches_a_pyomo_model_left_behind(tmp_path):
    """The check above can fail: a model whose Pyomo side keeps the first window."""
    dm = _StaleModel(window(1, True, True, "vpp"), Weights())
    dm.update(window(2, True, True, "vpp"))
    dm.solve()
    assert lp_file_optimum(dm.model, tmp_path) != pytest.approx(dm.objective_cny, rel=REL, abs=1e-6)


def test_a_run_records_the_shadow_prices_in_results_dispatch():
    res = vpp.run(scenario({"strategy": {"name": "source_load_interaction"}, "time": {"end": "2024-07-23T00:00:00"}}))
    cols = ["shadow_price_cny_per_kwh_node_city", "shadow_price_cny_per_kwh_node_coast", "shadow_price_cny_per_kwh_vpp"]
    prices = res.dispatch[cols].to_numpy()
    assert np.isfinite(prices).all()
    tariff = res.exogenous["price_import_cny_per_kwh"].reindex(res.dispatch.index).to_numpy()
    assert (prices[:, 2] >= 0.5 * tariff.min()).all()      # the VPP's energy is worth about the tariff


def test_a_form_at_a_node_the_problem_lacks_is_refused():
    """It would sit in no balance row and get its energy for free."""
    with pytest.raises(ValueError, match=r"forms at nodes 'elsewhere' that the problem does not have"):
        problem([battery(node="elsewhere")], [1.0, 2.0])


def test_a_hook_that_edits_the_objective_keeps_it_where_selling_beats_buying(tmp_path):
    """The sign search prices through the objective, so a hook's own objective is
    left as it is, the buy-or-sell choice goes to the MIP, and the model written out
    still gives the solve's objective (the valley case of ``test_optimizer``, with a
    0.01 CNY/kWh levy on the battery's charging added by the hook)."""
    from test_optimizer import valley

    def levy(m, _pr):
        m.objective.set_value(m.objective.expr + 0.01 * sum(m.st_pc.values()))

    dm = DispatchModel(valley(5.0, 10.0, 0.2), NO_EXTRAS, extra_constraints=levy)
    assert dm.solve()[0] == "optimal"
    assert dm.objective_cny == pytest.approx(-5 * 0.4155 + 10 * 0.2, rel=1e-5, abs=1e-5)   # nothing charged
    assert lp_file_optimum(dm.model, tmp_path) == pytest.approx(dm.objective_cny, rel=REL, abs=1e-6)
    assert "st_pc" in str(dm.model.objective.expr)
