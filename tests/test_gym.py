"""The Gymnasium environment: the standard checks, a random episode, and the same run as
vpp.run when the agent hands every interval to a built-in strategy."""

import numpy as np
import pytest
from conftest import SMALL, scenario

import vpp
from vpp.kpi import compute_kpis

gymnasium = pytest.importorskip("gymnasium")
from vpp.gym import VPPEnv  # noqa: E402

HALF_DAY = {"time": {"end": "2024-07-22T12:00:00"}}


def test_passes_gymnasiums_env_checker():
    from gymnasium.utils.env_checker import check_env

    check_env(VPPEnv(scenario(HALF_DAY)), skip_render_check=True)


def test_a_random_policy_runs_an_episode_inside_its_spaces():
    env = VPPEnv(scenario(HALF_DAY))
    assert env.fleets == ["offices", "home_chargers", "battery"]
    obs, _ = env.reset(seed=1)
    steps, done = 0, False
    while not done:
        obs, reward, done, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and np.isfinite(reward) and not truncated
        steps += 1
    assert steps == 12 and info["step"] == 48                  # 12 hourly intervals of 4 steps
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())


def test_the_scenarios_seeds_are_the_environments():
    env = VPPEnv(scenario(HALF_DAY))
    a, b, c = env.reset(seed=4)[0], env.reset(seed=4)[0], env.reset(seed=5)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_handing_every_interval_to_rule_based_is_vpp_run_with_it():
    """step(None) lets the delegate decide: every KPI is vpp.run's (solve time aside), and
    the rewards sum to minus the cost, the carbon price times the CO2 and the penalties."""
    env = VPPEnv(SMALL, delegate="rule_based", carbon_price_cny_per_t=100.0)
    env.reset()
    total, done = 0.0, False
    while not done:
        _, reward, done, _, _ = env.step(None)
        total += reward
    ours = compute_kpis(env.results())
    ref = vpp.run(SMALL, strategy="rule_based").kpis["value"]
    same = ours.drop("solve_time_s")
    np.testing.assert_allclose(same.to_numpy(), ref[same.index].to_numpy(), rtol=1e-12, atol=1e-9, equal_nan=True)
    unserved = ref["ev_energy_not_served_kwh"] + ref["process_energy_not_served_kwh"] + ref["load_unserved_kwh"]
    penalties = 5.0 * unserved + 50.0 * ref["comfort_violation_kh"]
    assert total == pytest.approx(-(ref["total_cost_cny"] + 100.0 * ref["co2_kg"] / 1e3 + penalties), rel=1e-9)


def test_the_battery_follows_the_action():
    """a = -1 charges the battery at its most (while it has room), a = +1 discharges."""
    env = VPPEnv(scenario(HALF_DAY))
    env.reset()
    j = env.fleets.index("battery")
    action = np.zeros(len(env.fleets), dtype=np.float32)
    action[j] = -1.0
    env.step(action)
    action[j] = 1.0
    env.step(action)
    p = env.results().power()["battery"].to_numpy()
    assert (p[:4] < 0).all() and (p[4:8] > 0).all()
