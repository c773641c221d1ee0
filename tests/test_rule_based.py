"""``rule_based``: each rule against a tiny window solved by hand, then end to end.

Windows use one-hour blocks of one simulation step, so every block is a
dispatch step, energies equal powers and the setpoints are the whole plan.
"""

import numpy as np
import pytest
from conftest import SMALL, check_balance, scenario

import vpp
from vpp.dispatch import DispatchProblem, NodeLimits
from vpp.errors import ScenarioError
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, StorageLike, Thermal
from vpp.optimizer.rule_based import FLAT, PEAK, VALLEY, RuleBased, RuleOptions, classify_prices, envelopes

P_TOL_KW = 1e-9          # the rules are closed-form arithmetic
P_FLAT = 0.7             # Shanghai flat price P (docs/SOURCES.md) [CNY/kWh]


def window(forms, prices, nodes=(("n", 1e4, 1e4),), peak_so_far=0.0, settlement="vpp"):
    h = len(prices)
    return DispatchProblem(HorizonGrid(0, np.ones(h, dtype=int), 1.0), tuple(NodeLimits(*n) for n in nodes),
                           tuple(forms), np.asarray(prices, float), np.zeros(h), np.zeros(h),
                           np.array([peak_so_far]), 0.0, settlement)


def store(p_kw, e_max, e0, h, discharge=True, target=0.0, e_min=0.0, fleet="bat", node="n"):
    one = np.ones((1, h))
    return StorageLike(fleet, node, p_kw * one, (p_kw if discharge else 0.0) * one, np.broadcast_to(e_min, (1, h)),
                       e_max * one, np.array([e0]), np.array([target]), np.array([1.0]), np.array([1.0]),
                       np.array([0.0]), np.array([10.0]), np.array([0.0]))


def load(kw, h, node="n"):
    return FixedProfile("load", node, np.full(h, -float(kw)))


def decide(forms, prices, **kw):
    opts = kw.pop("options", {})
    return RuleBased(RuleOptions(**opts)).decide(window(forms, prices, **kw))


# -- tariff periods ---------------------------------------------------------

def test_shanghai_july_tariff_periods():
    # valley 0.4 P, flat P, peak 1.8 P, critical peak 2.25 P (docs/SOURCES.md): range 0.4P..2.25P,
    # valley up to 0.4P + 0.25 * 1.85P = 0.8625P, peak from 2.25P - 0.3 * 1.85P = 1.695P
    prices = P_FLAT * np.array([0.4, 1.0, 1.8, 2.25])
    got = classify_prices(prices, np.empty(0), 0.25, 0.3, 0.1)
    assert got.tolist() == [VALLEY, FLAT, PEAK, PEAK]


def test_a_flat_horizon_is_all_flat_unless_memory_shows_dearer_hours():
    prices = P_FLAT * np.array([1.0, 1.05, 1.0])            # spread 5 % < 10 %
    assert (classify_prices(prices, np.empty(0), 0.25, 0.3, 0.1) == FLAT).all()
    # yesterday's peak (1.8 P) in memory: today's flat hours are flat, not peak, not valley
    got = classify_prices(prices, P_FLAT * np.array([0.4, 1.8]), 0.25, 0.3, 0.1)
    assert (got == FLAT).all()


def test_envelopes_by_hand():
    # 5 kWh per block at most, 10 kWh due by the end (block 2): least energy [0, 5, 10];
    # a 12 kWh cap in block 1 with 4 kWh of discharge per block keeps block 0 at most 16
    a, up, down = np.ones((1, 3)), np.full((1, 3), 5.0), np.full((1, 3), 4.0)
    lo, hi = envelopes(a, up, down, np.zeros((1, 3)), np.array([[20.0, 12.0, 20.0]]), np.array([10.0]))
    np.testing.assert_allclose(lo, [[0.0, 5.0, 10.0]], atol=P_TOL_KW)
    np.testing.assert_allclose(hi, [[16.0, 12.0, 20.0]], atol=P_TOL_KW)


# -- storage rules -----------------------------------------------------------

def test_battery_charges_from_the_local_surplus_only():
    # flat prices; PV 70 kW, load 40 kW -> 30 kW surplus in block 0, none in block 1
    pv = CurtailableSource("pv", "n", np.array([[70.0, 10.0]]))
    d = decide([pv, load(40, 2), store(50, 100, 0, 2)], [P_FLAT, P_FLAT])
    np.testing.assert_allclose(d.setpoints["bat"], [[-30.0, 0.0]], atol=P_TOL_KW)
    assert "pv" not in d.setpoints                          # sources are never curtailed


def test_peak_discharge_covers_the_import_and_no_more():
    # peak then flat; load 40 kW; 100 kW battery holding 80 kWh: discharge 40 in the peak, idle after
    d = decide([load(40, 2), store(100, 100, 80, 2)], P_FLAT * np.array([1.8, 1.0]))
    np.testing.assert_allclose(d.setpoints["bat"], [[40.0, 0.0]], atol=P_TOL_KW)


def test_valley_charging_for_the_next_peak_and_the_demand_limit():
    # valley then peak, load 40 kW, empty 100 kW / 100 kWh battery
    forms, prices = [load(40, 2), store(100, 100, 0, 2)], P_FLAT * np.array([0.4, 1.8])
    # no demand limit: fill for the peak (100 kWh), then cover the peak's 40 kW import
    d = decide(forms, prices, options={"valley_below_peak": False})
    np.testing.assert_allclose(d.setpoints["bat"], [[-100.0, 40.0]], atol=P_TOL_KW)
    # demand limit at the forecast inflexible peak (40 kW): no room to charge
    d = decide(forms, prices)
    np.testing.assert_allclose(d.setpoints["bat"], [[0.0, 0.0]], atol=P_TOL_KW)
    # billed peak so far 100 kW: 60 kW of room
    d = decide(forms, prices, peak_so_far=100.0)
    np.testing.assert_allclose(d.setpoints["bat"], [[-60.0, 40.0]], atol=P_TOL_KW)
    # the node's import limit (70 kW) binds first
    d = decide(forms, prices, peak_so_far=100.0, nodes=(("n", 70.0, 1e4),))
    np.testing.assert_allclose(d.setpoints["bat"][0, 0], -30.0, atol=P_TOL_KW)


def test_valley_charging_leaves_room_for_the_forecast_surplus():
    # valley, then a peak with 30 kW of PV surplus: keep 30 kWh of room in the 100 kWh battery
    pv = CurtailableSource("pv", "n", np.array([[0.0, 70.0]]))
    forms, prices = [pv, load(40, 2), store(100, 100, 0, 2)], P_FLAT * np.array([0.4, 1.8])
    d = decide(forms, prices, options={"valley_below_peak": False})
    np.testing.assert_allclose(d.setpoints["bat"], [[-70.0, -30.0]], atol=P_TOL_KW)
    d = decide(forms, prices, options={"valley_below_peak": False, "leave_room_for_surplus": False})
    np.testing.assert_allclose(d.setpoints["bat"], [[-100.0, 0.0]], atol=P_TOL_KW)


def test_ev_charges_at_the_minimum_rate_that_meets_its_deadline():
    # 10 kWh due by the end of block 1 (e_min), 5 kW charger, flat prices: charge 5, 5, then nothing
    ev = store(5, 20, 0, 3, discharge=False, e_min=np.array([0.0, 10.0, 10.0]), fleet="ev")
    d = decide([ev], [P_FLAT] * 3, options={"cheapest_hours": False})
    np.testing.assert_allclose(d.setpoints["ev"], [[-5.0, -5.0, 0.0]], atol=P_TOL_KW)


def test_ev_charges_in_the_cheapest_hour_before_its_deadline():
    # 5 kWh due by the end of the horizon: latest is block 2, the cheapest is block 1
    ev = store(5, 20, 0, 3, discharge=False, target=5.0, fleet="ev")
    prices = P_FLAT * np.array([1.0, 0.95, 1.0])             # within 10 %: all flat
    np.testing.assert_allclose(decide([ev], prices, options={"cheapest_hours": False}).setpoints["ev"],
                               [[0.0, 0.0, -5.0]], atol=P_TOL_KW)
    # full power in the cheapest hour, within the demand limit (billed peak so far 100 kW)
    np.testing.assert_allclose(decide([ev], prices, peak_so_far=100.0).setpoints["ev"], [[0.0, -5.0, 0.0]],
                               atol=P_TOL_KW)
    # no room under the billed peak (none billed yet, no inflexible import): the deadline's minimum rate
    np.testing.assert_allclose(decide([ev], prices).setpoints["ev"], [[0.0, 0.0, -5.0]], atol=P_TOL_KW)


def test_ev_charges_at_full_power_in_the_valley():
    ev = store(5, 20, 0, 2, discharge=False, target=5.0, fleet="ev")
    d = decide([ev], P_FLAT * np.array([0.4, 1.8]), options={"valley_below_peak": False})
    np.testing.assert_allclose(d.setpoints["ev"], [[-5.0, 0.0]], atol=P_TOL_KW)


# -- buildings ---------------------------------------------------------------

def building(h, t0=25.0, p_max=10.0):
    # one state, no decay, 1 K per kW of cooling, +2 K of gains per block, band 22..26 degC
    row = lambda x: np.full((1, h), float(x))  # noqa: E731
    return Thermal("bldg", "n", row(1.0), row(-1.0), row(2.0), np.array([t0]), row(p_max), row(22.0), row(26.0),
                   np.array([100.0]))


def test_building_holds_the_top_of_the_band_like_its_thermostat():
    # free drift 25 -> 27: 1 kW brings it to 26; then 26 -> 28: 2 kW
    d = decide([building(2)], [P_FLAT, P_FLAT])
    np.testing.assert_allclose(d.setpoints["bldg"], [[-1.0, -2.0]], atol=P_TOL_KW)


def test_building_precools_with_the_surplus_it_has():
    # surplus 10 kW: cool to the floor: 27 -> 22 needs 5 kW; then 24 -> 22 needs 2 kW
    pv = CurtailableSource("pv", "n", np.array([[10.0, 10.0]]))
    np.testing.assert_allclose(decide([pv, building(2)], [P_FLAT] * 2).setpoints["bldg"], [[-5.0, -2.0]],
                               atol=P_TOL_KW)
    # surplus 3 kW: all of it goes to cooling: 27 - 3 = 24, then 26 - 3 = 23
    pv = CurtailableSource("pv", "n", np.array([[3.0, 3.0]]))
    np.testing.assert_allclose(decide([pv, building(2)], [P_FLAT] * 2).setpoints["bldg"], [[-3.0, -3.0]],
                               atol=P_TOL_KW)


def test_building_precools_in_the_valley_only_shortly_before_a_dearer_period():
    # valley, valley, valley, peak: with a 1 h lead only the last valley block pre-cools
    # thermostat: 25->27 cool 1 -> 26; 26->28 cool 2 -> 26; pre-cool 26->28 to 22: 6 kW; peak 22 -> 24: 0
    prices = P_FLAT * np.array([0.4, 0.4, 0.4, 1.8])
    d = decide([building(4)], prices, options={"precool_lead_h": 1.0, "valley_below_peak": False})
    np.testing.assert_allclose(d.setpoints["bldg"], [[-1.0, -2.0, -6.0, 0.0]], atol=P_TOL_KW)


def test_preheating_stops_where_later_gains_would_overheat_the_building():
    # heating (1 K per kW), band 20..22, start 20; no drift in block 0, +1 K of gains in block 1.
    # The thermostat needs nothing; 10 kW of surplus in block 0 could pre-heat to 22 (2 kW), but
    # block 1 would then end at 23: only 1 kW (to 21) keeps the band, and block 1 needs none.
    row = lambda x: np.array([x], dtype=float)  # noqa: E731
    heated = Thermal("bldg", "n", np.ones((1, 2)), np.ones((1, 2)), row([0.0, 1.0]), np.array([20.0]),
                     np.full((1, 2), 10.0), np.full((1, 2), 20.0), np.full((1, 2), 22.0), np.array([100.0]))
    pv = CurtailableSource("pv", "n", np.array([[10.0, 10.0]]))
    np.testing.assert_allclose(decide([pv, heated], [P_FLAT] * 2).setpoints["bldg"], [[-1.0, 0.0]], atol=P_TOL_KW)


def test_surplus_goes_to_flexible_loads_before_storage():
    # 4 kW surplus: the building's pre-cooling takes it (room 4 of 5 kW), the battery gets none
    pv = CurtailableSource("pv", "n", np.array([[5.0]]))
    d = decide([pv, building(1), store(50, 100, 0, 1)], [P_FLAT])
    np.testing.assert_allclose(d.setpoints["bldg"], [[-5.0]], atol=P_TOL_KW)
    np.testing.assert_allclose(d.setpoints["bat"], [[0.0]], atol=P_TOL_KW)


# -- options -------------------------------------------------------------------

@pytest.mark.parametrize("options,field", [
    ({"valley_band_frac": 1.5}, "strategy.options.valley_band_frac"),
    ({"valley_band_frac": 0.6, "peak_band_frac": 0.6}, "strategy.options"),
    ({"price_memory_h": -1}, "strategy.options.price_memory_h"),
])
def test_bad_options_are_one_line_errors(options, field):
    with pytest.raises(ScenarioError) as err:
        vpp.validate(scenario({"strategy": {"name": "rule_based", "options": options}}))
    assert field in str(err.value) and "\n" not in str(err.value)


# -- end to end ----------------------------------------------------------------

@pytest.fixture(scope="module")
def small_run():
    return vpp.run(SMALL, strategy="rule_based")


def test_small_district_end_to_end(small_run):
    res = small_run
    check_balance(res)
    kpis = res.kpis["value"]
    assert kpis["n_fallbacks"] == 0
    assert np.isfinite(kpis[["green_local_consumption_rate", "total_cost_cny", "co2_kg", "peak_import_kw"]]).all()
    assert (res.dispatch["status"] == "rule").all()
    # the rules save money against the uncontrolled baseline on this district
    assert kpis["total_cost_cny"] < res.kpis.loc["total_cost_cny", "baseline"]


def test_a_reused_strategy_object_forgets_the_previous_run():
    prices = P_FLAT * np.array([1.0, 1.0])
    rb = RuleBased()
    first = rb.decide(window([load(40, 2), store(100, 100, 80, 2)], prices))
    rb.decide(window([load(40, 2), store(100, 100, 80, 2)], P_FLAT * np.array([0.4, 2.25])))
    again = rb.decide(window([load(40, 2), store(100, 100, 80, 2)], prices))   # k0 = 0 again: a new run
    np.testing.assert_array_equal(first.setpoints["bat"], again.setpoints["bat"])
