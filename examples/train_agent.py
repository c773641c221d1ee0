"""Train a small agent on the VPP environment, with numpy alone.

The agent is a linear policy, ``action = tanh(W obs + b)``, trained by the
cross-entropy method (Rubinstein 1999; as a policy search, Szita & Lorincz 2006):
each generation samples policies around the current mean, runs an episode with
each, and moves the mean to the best few.  It needs no deep-learning framework, so
it runs anywhere vpp does; for PPO or SAC, hand ``vpp.gym.VPPEnv`` to a library
such as stable-baselines3.

The episode return is compared with two fixed policies: doing nothing (every
fleet at a = 0) and handing every interval to ``rule_based``, on the training
seed and on held-out seeds (other draws of weather, arrivals and forecast
errors), since a policy searched on one episode can fit that episode alone.

Run: ``python examples/train_agent.py [--generations 8] [--population 12] [--hours 24] [--seeds 7 10 11]``
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np

from vpp.gym import VPPEnv

SMALL = Path(__file__).resolve().parents[1] / "scenarios" / "small_district.toml"


def episode(env: VPPEnv, policy, seed: int) -> float:
    """The return of one episode under *policy* (``obs -> action``, or ``None`` to delegate)."""
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, done, _, _ = env.step(policy(obs))
        total += reward
    return total


def linear(theta: np.ndarray, n_obs: int, n_act: int, scale: np.ndarray):
    w, b = theta[: n_obs * n_act].reshape(n_act, n_obs), theta[n_obs * n_act:]
    return lambda obs: np.tanh(w @ (obs / scale) + b).astype(np.float32)


def train(env: VPPEnv, generations: int, population: int, elite: int, seeds: list[int]):
    """The cross-entropy method over the linear policy's weights, each candidate scored by
    its mean return over the episodes of *seeds*: the mean, each generation's best score,
    and the observation scale."""
    rng = np.random.default_rng(seeds[0])
    n_obs, n_act = env.observation_space.shape[0], env.action_space.shape[0]
    obs, _ = env.reset(seed=seeds[0])
    scale = np.maximum(np.abs(obs), 1.0)                 # observations to about unit size
    mean, std = np.zeros(n_obs * n_act + n_act), np.full(n_obs * n_act + n_act, 0.5)
    best = []
    for _ in range(generations):
        thetas = mean + std * rng.standard_normal((population, mean.size))
        returns = np.array([np.mean([episode(env, linear(t, n_obs, n_act, scale), s) for s in seeds])
                            for t in thetas])
        top = thetas[np.argsort(returns)[-elite:]]
        mean, std = top.mean(axis=0), top.std(axis=0) + 0.02
        best.append(float(returns.max()))
    return mean, best, scale


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--population", type=int, default=12)
    ap.add_argument("--elite", type=int, default=3)
    ap.add_argument("--hours", type=int, default=24, help="episode length from the scenario's start")
    ap.add_argument("--seeds", type=int, nargs="+", default=[7], help="seeds to train on (a candidate's score: "
                                                                      "its mean return over their episodes)")
    ap.add_argument("--test-seeds", type=int, nargs="*", default=[8, 9], help="held-out seeds to evaluate on")
    args = ap.parse_args(argv)
    import vpp

    sc = vpp.load(SMALL)
    end = sc.time.start + dt.timedelta(hours=args.hours)
    sc = sc.model_copy(update={"time": sc.time.model_copy(update={"end": end})})
    env = VPPEnv(sc, delegate="rule_based")
    mean, best, scale = train(env, args.generations, args.population, args.elite, args.seeds)
    n_obs, n_act = env.observation_space.shape[0], env.action_space.shape[0]
    policies = {"idle": lambda obs: np.zeros(env.action_space.shape, dtype=np.float32),
                "rule_based": lambda obs: None, "trained": linear(mean, n_obs, n_act, scale)}
    seeds = [*args.seeds, *args.test_seeds]
    returns = {name: [episode(env, policy, s) for s in seeds] for name, policy in policies.items()}
    print(f"episode return (minus cost, carbon and penalties, CNY) over {args.hours} h; seeds "
          f"{', '.join(map(str, args.seeds))} trained on, {', '.join(map(str, args.test_seeds)) or 'none'} held out:")
    labels = {"idle": "every fleet idle (a = 0)", "rule_based": "rule_based", "trained": "trained linear policy"}
    for name, values in returns.items():
        print(f"  {labels[name]:26s} " + " ".join(f"{v:10,.0f}" for v in values))
    print("  best return per generation: " + ", ".join(f"{b:,.0f}" for b in best))
    n = len(args.seeds)
    return {name: float(np.mean(values[:n])) for name, values in returns.items()} | {
        f"{name}_held_out": values[n:] for name, values in returns.items()} | {"best": best}


if __name__ == "__main__":
    main()
