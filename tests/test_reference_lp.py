"""The centralised Pyomo model against the same LP built independently in numpy
and passed straight to highspy (tests/reference_lp.py), on random instances."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_lp import DirectLP

from vpp.dispatch import DispatchProblem, NodeLimits
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, StorageLike, Thermal
from vpp.optimizer.model import DispatchModel, Weights

OBJ_RTOL = 1e-6


def random_problem(r: np.random.Generator) -> DispatchProblem:
    g = HorizonGrid.build(int(r.integers(0, 50)), 0.25, int(r.integers(1, 5)), int(r.integers(4, 24)), 4)
    h = g.n_blocks
    nodes = [NodeLimits(f"n{i}", float(r.uniform(50, 500)), float(r.uniform(0, 200))) for i in range(r.integers(1, 3))]
    names = [n.name for n in nodes]
    forms = []
    for j in range(int(r.integers(1, 3))):
        n = int(r.integers(1, 4))
        one = np.ones((n, h))
        e_max = r.uniform(10, 100, (n, 1)) * one
        forms.append(StorageLike(f"s{j}", names[j % len(names)], r.uniform(1, 30, (n, 1)) * one,
                                 r.uniform(0, 30, (n, 1)) * one * r.integers(0, 2), 0.1 * e_max, e_max,
                                 r.uniform(0, 1, n) * e_max[:, 0], r.uniform(0, 1, n) * e_max[:, 0],
                                 r.uniform(0.8, 1, (n, h)) if r.random() < 0.5 else r.uniform(0.8, 1, n),
                                 r.uniform(0.8, 1, n), r.uniform(0, 0.01, n), r.uniform(0.5, 3, n),
                                 r.uniform(0, 0.1, n)))
    n = int(r.integers(1, 3))
    a = np.zeros((n, h, 2, 2))
    a[..., 0, 0], a[..., 0, 1], a[..., 1, 0], a[..., 1, 1] = 0.6, 0.3, 0.1, 0.85
    b = np.zeros((n, h, 2))
    b[..., 0] = -r.uniform(0.005, 0.02, (n, h))
    d = np.stack([r.uniform(2, 4, (n, h)), r.uniform(0.5, 1.0, (n, h))], axis=-1)
    forms.append(Thermal("t", names[0], a, b, d, r.uniform(23, 26, (n, 2)), r.uniform(50, 200, (n, h)),
                         np.full((n, h), 22.0), np.full((n, h), 26.0), r.uniform(50, 500, n)))
    forms.append(CurtailableSource("pv", names[-1], r.uniform(0, 150, (int(r.integers(1, 4)), h))))
    forms.append(FixedProfile("load", names[0], -r.uniform(20, 200, h)))
    settlement = "vpp" if r.random() < 0.5 else "node"
    accounts = 1 if settlement == "vpp" else len(nodes)
    return DispatchProblem(g, tuple(nodes), tuple(forms), r.uniform(0.2, 1.6, h), r.uniform(0, 0.4, h),
                           r.uniform(0.4, 0.8, h), r.uniform(0, 100, accounts) * r.integers(0, 2),
                           float(r.uniform(0, 20)), settlement)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_pyomo_model_equals_the_direct_highspy_lp(seed):
    pr = random_problem(np.random.default_rng(seed))
    w = Weights(carbon_price_cny_per_t=80.0, curtailment_penalty_cny_per_kwh=0.03, limit_violation_cny_per_kwh=10.0)
    model = DispatchModel(pr, w)
    assert model.solve()[0].startswith("optimal")
    status, ref, _ = DirectLP(pr, w).solve()
    assert status == "optimal"
    assert model.objective_cny == pytest.approx(ref, rel=OBJ_RTOL, abs=1e-4)
