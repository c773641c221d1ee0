"""``price_signal``: equilibria known by hand, convergence in rounds, end to end.

Windows use one-hour blocks of one simulation step, so energies equal powers.
The hand cases: a battery behind an import limit (the price of the congested
hour must rise until the battery is indifferent, i.e. to the later price
times the round-trip efficiency, and its charging then fills the limit
exactly) and PV behind an export limit (the price must fall to minus the
curtailment premium, where the sources curtail what the node cannot export).
"""

import numpy as np
import pytest
from conftest import SMALL, check_balance, scenario

import vpp
from vpp.dispatch import DispatchProblem, NodeLimits
from vpp.errors import ScenarioError
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, StorageLike
from vpp.optimizer.price_signal import PriceSignal, PriceSignalOptions, limit_mismatch_kwh

P_TOL_KW = 1.0           # a subgradient method with averaging: within 1 kW after the rounds given
PRICE_TOL = 0.05         # [CNY/kWh]
CHATTER_TOL = 0.15       # [CNY/kWh], see the curtailment test
EXACT_KW = 1e-6          # an LP answer (interior point / simplex tolerance)


def window(forms, prices, export_prices=None, nodes=(("n", 1e4, 1e4),), demand_charge=0.0, peak_so_far=0.0):
    h = len(prices)
    return DispatchProblem(HorizonGrid(0, np.ones(h, dtype=int), 1.0), tuple(NodeLimits(*n) for n in nodes),
                           tuple(forms), np.asarray(prices, float),
                           np.zeros(h) if export_prices is None else np.asarray(export_prices, float), np.zeros(h),
                           np.array([peak_so_far]), demand_charge, "vpp")


def battery(p_kw=50.0, e_max=100.0, eta=1.0, h=2):
    one = np.ones((1, h))
    return StorageLike("bat", "n", p_kw * one, p_kw * one, 0 * one, e_max * one, np.array([0.0]), np.array([0.0]),
                       np.array([eta]), np.array([eta]), np.array([0.0]), np.array([50.0]), np.array([0.0]))


def decide(problem, rounds, **options):
    return PriceSignal(PriceSignalOptions(rounds=rounds, carbon_price_cny_per_t=0.0, **options)).decide(problem)


def congested(eta=1.0):
    """Load 100 kW in both hours, import limit 120 kW, prices 1 then 2, a 50 kW battery.

    Uncoordinated, the battery charges 50 kW in hour 0 (150 kW import); the
    coordinated optimum charges 20 kW (the limit), at a price of 2 eta^2 in hour 0.
    """
    load = FixedProfile("load", "n", np.array([-100.0, -100.0]))
    return window([battery(eta=eta), load], [1.0, 2.0], nodes=(("n", 120.0, 1e4),))


@pytest.mark.parametrize("eta", [1.0, 0.9])
def test_price_rises_until_the_import_limit_holds(eta):
    d = decide(congested(eta), rounds=60)
    charge = -d.setpoints["bat"][0, 0]
    assert charge == pytest.approx(20.0, abs=P_TOL_KW)
    assert 100.0 + charge <= 120.0 + 1e-9                   # the limit holds in the chosen plan
    assert d.metrics["ps_mismatch_kwh"] == pytest.approx(0.0, abs=1e-9)
    assert d.metrics["ps_first_mismatch_kwh"] == pytest.approx(30.0, abs=EXACT_KW)   # 150 - 120 in round 1
    # the hour-0 price rose from 1 to the battery's indifference price 2 eta^2; hour 1 stays at 2
    assert d.metrics["ps_price_min_cny_per_kwh"] == pytest.approx(2.0 * eta**2, abs=PRICE_TOL)
    assert d.metrics["ps_price_max_cny_per_kwh"] == pytest.approx(2.0, abs=PRICE_TOL)


def test_more_rounds_never_leave_a_larger_mismatch():
    mismatch = [decide(congested(), rounds=r).metrics["ps_mismatch_kwh"] for r in range(1, 31)]
    assert all(b <= a for a, b in zip(mismatch, mismatch[1:], strict=False))
    assert mismatch[0] == pytest.approx(30.0, abs=EXACT_KW) and mismatch[-1] == pytest.approx(0.0, abs=1e-9)


def test_price_falls_until_the_sources_curtail_what_the_node_cannot_export():
    # PV 100 kW, load 30 kW, export limit 50 kW: 20 kW must be curtailed; the price
    # falls from the export price (0.4) to -0.05, the premium sources put on producing
    pv = CurtailableSource("pv", "n", np.array([[100.0]]))
    load = FixedProfile("load", "n", np.array([-30.0]))
    d = decide(window([pv, load], [1.0], [0.4], nodes=(("n", 1e4, 50.0),)), rounds=100)
    assert d.setpoints["pv"][0, 0] == pytest.approx(80.0, abs=P_TOL_KW)
    assert d.metrics["ps_mismatch_kwh"] == pytest.approx(0.0, abs=1e-9)
    # a round's price chatters around the equilibrium by about one price step (0.8 a_j at j = 100: 0.08)
    assert d.metrics["ps_price_min_cny_per_kwh"] == pytest.approx(-0.05, abs=CHATTER_TOL)


def test_without_congestion_the_tariff_is_the_price_and_the_answer_is_the_optimum():
    # load 10 kW, prices 1 then 2: charge 10 at 1, discharge 10 at 2 (tests/test_optimizer.py);
    # the VPP imports in both hours, so the price stays the tariff in every round
    load = FixedProfile("load", "n", np.array([-10.0, -10.0]))
    d = decide(window([battery(p_kw=10.0, e_max=20.0), load], [1.0, 2.0]), rounds=5)
    np.testing.assert_allclose(d.setpoints["bat"], [[-10.0, 10.0]], atol=EXACT_KW)
    assert d.metrics["ps_price_min_cny_per_kwh"] == pytest.approx(1.0, abs=1e-12)
    assert d.metrics["ps_price_max_cny_per_kwh"] == pytest.approx(2.0, abs=1e-12)
    assert d.metrics["ps_first_mismatch_kwh"] == pytest.approx(0.0, abs=1e-12)


def test_the_demand_charge_raises_the_price_of_the_peak_hour():
    # load 60 then 40 kW, billed peak so far 50 kW, flat price 1: a battery holding 20 kWh has no
    # reason to move at a flat price, but the demand charge (100 CNY/kW) prices hour 0 up
    one = np.ones((1, 2))
    bat = StorageLike("bat", "n", 20 * one, 20 * one, 0 * one, 40 * one, np.array([20.0]), np.array([0.0]),
                      np.array([1.0]), np.array([1.0]), np.array([0.0]), np.array([0.0]), np.array([0.0]))
    load = FixedProfile("load", "n", np.array([-60.0, -40.0]))
    d = decide(window([bat, load], [1.0, 1.0], demand_charge=100.0, peak_so_far=50.0), rounds=30)
    assert d.setpoints["bat"][0, 0] > 5.0                    # discharges against the new peak
    d0 = decide(window([bat, load], [1.0, 1.0], demand_charge=100.0, peak_so_far=50.0), rounds=30,
                price_demand_charge=False)
    assert d0.metrics["ps_price_max_cny_per_kwh"] == pytest.approx(1.0, abs=1e-12)


def test_limit_mismatch_by_hand():
    nodes = (NodeLimits("a", 100.0, 10.0), NodeLimits("b", 50.0, 50.0))
    # a imports 120 (20 over) in hour 0 and exports 30 (20 over) in hour 1; b is inside;
    # the VPP imports 150 in hour 0, 20 over its 130 kW limit; 2-hour blocks double it all
    m = np.array([[120.0, -30.0], [30.0, 0.0]])
    assert limit_mismatch_kwh(m, nodes, np.array([2.0, 2.0]), 130.0) == pytest.approx(2 * (20 + 20 + 20))


def test_fleet_models_persist_across_rounds_and_windows():
    ps = PriceSignal(PriceSignalOptions(rounds=3))
    ps.decide(congested())
    model = ps.agents["bat"].model
    g = HorizonGrid(1, np.ones(2, dtype=int), 1.0)
    pr = congested()
    later = DispatchProblem(g, pr.nodes, pr.forms, pr.price_import_cny_per_kwh, pr.price_export_cny_per_kwh,
                            pr.co2_kg_per_kwh, pr.peak_import_so_far_kw)
    d = ps.decide(later)
    assert ps.agents["bat"].model is model
    assert d.metrics["ps_fleet_solves"] == 3


def test_the_solve_time_limit_is_per_solve_not_per_run():
    # HiGHS accumulates run time over a model's solves; 500 rounds of this tiny LP take
    # about 30 ms in all, so a 10 ms limit compared with the total would fail most of them
    d = decide(congested(), rounds=500, time_limit_s=0.01)
    assert not d.fallback and d.metrics["ps_failed_solves"] == 0


@pytest.mark.parametrize("options,field", [
    ({"rounds": 0}, "strategy.options.rounds"),
    ({"step_size": -1.0}, "strategy.options.step_size"),
    ({"solver": "barrier"}, "strategy.options.solver"),
])
def test_bad_options_are_one_line_errors(options, field):
    with pytest.raises(ScenarioError) as err:
        vpp.validate(scenario({"strategy": {"name": "price_signal", "options": options}}))
    assert field in str(err.value) and "\n" not in str(err.value)


def test_small_district_end_to_end():
    res = vpp.run(SMALL, strategy="price_signal")
    check_balance(res)
    kpis = res.kpis["value"]
    assert kpis["n_fallbacks"] == 0
    assert np.isfinite(kpis[["green_local_consumption_rate", "total_cost_cny", "co2_kg", "peak_import_kw"]]).all()
    d = res.dispatch
    assert (d["ps_rounds"] == PriceSignalOptions().rounds).all()
    assert np.isfinite(d[["ps_mismatch_kwh", "ps_price_min_cny_per_kwh", "ps_price_max_cny_per_kwh"]]).all().all()
    assert (d["ps_mismatch_kwh"] <= d["ps_first_mismatch_kwh"] + 1e-9).all()
    assert kpis["total_cost_cny"] < res.kpis.loc["total_cost_cny", "baseline"]
