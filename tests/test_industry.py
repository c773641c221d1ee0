"""Tests of the industrial-site fleet (vpp.assets.industry).

References are hand computations written out in the comments (schedule sums,
batch timing, curtailment and make-up bookkeeping), invariants under any
setpoint (Hypothesis), and a small LP built here from the offered form's own
fields and solved with scipy's HiGHS, whose plan the physics must deliver.
"""

from __future__ import annotations

import numpy as np
import pytest
from _exo_helpers import make_context, make_exogenous
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy.optimize import linprog
from scipy.sparse import lil_matrix

from vpp.assets import fleet_type
from vpp.assets.industry import IndustryFleet, IndustryParams
from vpp.flex import FixedProfile, HorizonGrid, StorageLike

MONDAY = "2024-07-15 00:00"   # make_exogenous's default start: a Monday
DT_H = 0.25
PAD = 96

ABS_KW = 1e-9       # power of exact arithmetic [kW]
ABS_KWH = 1e-9      # energy of exact arithmetic [kWh]
PLAN_KW = 1e-6      # a simplex plan delivered by the physics [kW]
PLAN_KWH = 1e-6     # energy along that plan [kWh]


def _fleet(n: int = 1, days: int = 2, seed: int = 0, **params) -> IndustryFleet:
    exo = make_exogenous(96 * days + PAD, start=MONDAY)
    return IndustryFleet(make_context(exo, n, seed=seed, name="industry", pad_steps=PAD), IndustryParams(**params))


# One batch site, one batch a day with fixed timing: released 08:00 (step 32),
# due 14:00 (step 56), 2 h at rated power (8 steps).  Two-shift weekday schedule
# sum: 6 x 0.30 + 0.80 + 7 x 1.00 + 0.90 + 6 x 1.00 + 0.80 + 2 x 0.35 = 18.0 h,
# so E = 0.2 x 1000 kW x 18.0 h = 3600 kWh and R = 3600 kWh / 2 h = 1800 kW.
BATCH = dict(p_site_kw=1000.0, flexible_share=0.2, shift_pattern="two_shift", curtailable_site_share=0.0,
             earliest_start_h=8.0, window_h=6.0, duration_h=2.0, batch_energy_factor=1.0, base_noise_frac=0.0)
A, D, M = 32, 56, 8
E_BATCH, R_BATCH = 3600.0, 1800.0

# One curtailable site: nominal curtailable power 0.2 x 1000 kW x f(t) (three
# shifts: f = 1.0 at 10-14 h on weekdays); at most 1 h of full curtailment owed
# (200 kWh); make-up at most 0.5 x 200 = 100 kW with r = 1.25; everything made
# up by 14:00 (step 56).  Full make-up raises the store by 100 / 1.25 x 0.25 = 20 kWh/step.
CURT = dict(p_site_kw=1000.0, flexible_share=0.2, shift_pattern="three_shift", curtailable_site_share=1.0,
            curtail_max_h=1.0, rebound_factor=1.25, rebound_p_max_frac=0.5, rebound_deadlines_h=(14.0,),
            base_noise_frac=0.0)


# -- registry and parameters --------------------------------------------------------


def test_registered_with_contract_attributes():
    cls = fleet_type("industry")
    assert cls is IndustryFleet and cls.Params is IndustryParams
    assert (cls.role, cls.green, cls.curtailable) == ("load", False, False)
    assert set(cls.state_columns) >= {"p_base_kw", "p_batch_kw", "p_curtailed_kw", "owed_kwh",
                                      "batch_energy_unserved_kwh"}


def test_defaults_follow_the_sources_table():
    p = IndustryParams()
    assert p.p_site_kw == pytest.approx(5000.0) and p.flexible_share == pytest.approx(0.15)


@pytest.mark.parametrize("bad, field", [
    ({"rebound_factor": 0.9}, "rebound_factor"),
    ({"rebound_deadlines_h": [6.0, 24.0]}, "rebound_deadlines_h"),
    ({"flexible_share": 1.0}, "flexible_share"),
    ({"curtailable_site_share": 1.5}, "curtailable_site_share"),
    ({"duration_h": {"dist": "normal", "mean": 6, "std": 1}}, "duration_h"),
    ({"shift_pattern": "four_shift"}, "shift_pattern"),
    ({"p_site": 5000}, "p_site"),
])
def test_bad_params_rejected(bad, field):
    with pytest.raises(ValidationError) as err:
        IndustryParams(**bad)
    assert field in {str(e["loc"][0]) for e in err.value.errors()}


def test_curtailable_sites_are_the_stated_share():
    f = _fleet(n=20, curtailable_site_share=0.25)
    assert f.is_curtailable.sum() == 5
    assert np.all(f.batches.energy_kwh[f.is_curtailable] == 0.0)
    assert np.all(f.owed_max_kwh[~f.is_curtailable] == 0.0)


# -- batches by hand ----------------------------------------------------------------


def test_batch_timing_and_energy_by_hand():
    f = _fleet(**BATCH)
    b = f.batches
    monday = 1                                  # column 0 is the Sunday before the start
    assert (b.release[0, monday], b.deadline[0, monday], b.steps_needed[0, monday]) == (A, D, M)
    assert b.energy_kwh[0, monday] == pytest.approx(E_BATCH, abs=ABS_KWH)
    assert b.rated_kw[0, monday] == pytest.approx(R_BATCH, abs=ABS_KW)
    # Sunday: weekend sum 24 x 0.30 = 7.2 h -> 1440 kWh, due 14:00 Sunday (step -40): nothing carried in
    assert b.energy_kwh[0, 0] == pytest.approx(0.2 * 1000 * 7.2, abs=ABS_KWH)
    assert b.requested_kwh[0, 0] == pytest.approx(0.0, abs=ABS_KWH)


def test_uncontrolled_batch_runs_at_rated_power_from_release():
    f = _fleet(**BATCH)
    p = np.array([f.step(k, None)[0] for k in range(96)])
    batch = np.zeros(96)
    batch[A:A + M] = R_BATCH
    # base: 0.8 x 1000 kW x f(hour) of the two-shift weekday
    hours = np.repeat(np.arange(24), 4)
    frac = np.array([0.30] * 6 + [0.80] + [1.00] * 7 + [0.90] + [1.00] * 6 + [0.80] + [0.35] * 2)[hours]
    np.testing.assert_allclose(p, -(800.0 * frac + batch), atol=ABS_KW)


def test_a_batch_left_alone_is_processed_at_its_latest_start():
    # setpoint 0 (or a positive one: "do not process") until the laxity rule forces
    # full power for the last 8 steps before the deadline: steps 48..55.
    f = _fleet(**BATCH)
    pb = []
    for k in range(96):
        f.step(k, np.array([0.0 if k % 2 else 5e3]))
        pb.append(f.p_batch_kw[0])
    expected = np.zeros(96)
    expected[D - M:D] = R_BATCH
    np.testing.assert_allclose(pb, expected, atol=ABS_KW)
    t = f.tables()["industry_batches"]
    monday = t.iloc[0]
    assert monday["requested_kwh"] == pytest.approx(E_BATCH) and monday["unserved_kwh"] == pytest.approx(0.0)


def test_half_power_request_is_honoured_and_books_energy():
    # 900 kW from 08:00 is 225 kWh per step: 16 steps finish 3600 kWh at step 48;
    # the laxity rule never binds (3600 - 225 (k - 32) <= 450 (55 - k) for k <= 55).
    f = _fleet(**BATCH)
    pb = []
    for k in range(64):
        f.step(k, np.array([-900.0]))
        pb.append(f.p_batch_kw[0])
    expected = np.zeros(64)
    expected[A:A + 16] = 900.0
    np.testing.assert_allclose(pb, expected, atol=ABS_KW)
    assert f._done_kwh[0, 1] == pytest.approx(E_BATCH, abs=ABS_KWH)


# -- curtailment and make-up by hand ------------------------------------------------


def test_curtailment_and_rebound_bookkeeping_by_hand():
    f = _fleet(**CURT)
    assert f.owed_max_kwh[0] == pytest.approx(200.0) and f.rebound_p_max_kw[0] == pytest.approx(100.0)
    sp = np.zeros(96)
    sp[40:42] = 1e6        # 10:00-10:30: curtail as much as allowed: c(t) = 200 kW
    sp[42] = -100.0        # 10:30: make up 100 kW -> 100 x 0.25 / 1.25 = 20 kWh of the 100 owed
    owed, pc, pr, p = [], [], [], []
    for k in range(64):
        p.append(f.step(k, np.array([sp[k]]))[0])
        owed.append(f.owed_kwh[0])
        pc.append(f.p_curtailed_kw[0])
        pr.append(f.p_rebound_kw[0])
    exp_pc = np.zeros(64)
    exp_pc[40:42] = 200.0
    # left alone from 10:45, 80 kWh owed = store 120 kWh; the envelope
    # 200 - 20 (56 - t) first exceeds 120 at t = 53, so make-up is forced at
    # full power during steps 52..55 (4 x 20 kWh) and nothing is owed at 14:00.
    exp_pr = np.zeros(64)
    exp_pr[42] = 100.0
    exp_pr[52:56] = 100.0
    exp_owed = np.zeros(64)
    exp_owed[40], exp_owed[41], exp_owed[42:52] = 50.0, 100.0, 80.0
    exp_owed[52:56] = [60.0, 40.0, 20.0, 0.0]
    np.testing.assert_allclose(pc, exp_pc, atol=ABS_KW)
    np.testing.assert_allclose(pr, exp_pr, atol=ABS_KW)
    np.testing.assert_allclose(owed, exp_owed, atol=ABS_KWH)
    # grid energy of the make-up is r times the curtailed energy: 1.25 x 100 kWh
    assert sum(pr) * DT_H == pytest.approx(1.25 * sum(pc) * DT_H, abs=ABS_KWH)
    # site power at 10:00 (base 0.8 x 1000 + 200 curtailable, 200 curtailed) and 13:00 (1000 + 100)
    assert p[40] == pytest.approx(-800.0, abs=ABS_KW) and p[52] == pytest.approx(-1100.0, abs=ABS_KW)


def test_curtailment_stops_where_the_deadline_could_not_be_met():
    # From nothing owed at 13:30 (step 54): the envelope at 13:45 is 200 - 20 = 180 kWh,
    # so at most (200 - 180) / 0.25 = 80 kW may be curtailed; the last step none.
    f = _fleet(**CURT)
    for k in range(54):
        f.step(k, np.array([0.0]))
    f.step(54, np.array([np.inf]))
    assert f.p_curtailed_kw[0] == pytest.approx(80.0, abs=ABS_KW)
    f.step(55, np.array([1e300]))     # 20 kWh owed: forced make-up 20 x 1.25 / 0.25 = 100 kW instead
    assert f.p_curtailed_kw[0] == pytest.approx(0.0, abs=ABS_KW)
    assert f.p_rebound_kw[0] == pytest.approx(100.0, abs=ABS_KW)
    assert f.owed_kwh[0] == pytest.approx(0.0, abs=ABS_KWH)


# -- limits under any setpoint ------------------------------------------------------

_ANY = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                 st.sampled_from([0.0, -0.0, 1e300, -1e300, np.nan, np.inf, -np.inf]))


@settings(max_examples=40, deadline=None)
@given(setpoints=st.lists(st.tuples(_ANY, _ANY), min_size=60, max_size=60),
       start=st.integers(0, 96), r=st.floats(1.0, 2.0), reb=st.floats(0.05, 1.5),
       hours=st.floats(0.0, 4.0), deadlines=st.lists(st.sampled_from([0.0, 6.5, 14.0, 18.25, 22.0]), max_size=3),
       seed=st.integers(0, 3))
def test_limits_hold_for_any_setpoint(setpoints, start, r, reb, hours, deadlines, seed):
    f = _fleet(n=2, seed=seed, curtailable_site_share=0.5, rebound_factor=r, rebound_p_max_frac=reb,
               curtail_max_h=hours, rebound_deadlines_h=tuple(deadlines))
    b, dt = f.batches, DT_H
    for k in range(start):
        f.step(k, None)
    deadline_steps = set(np.unique(f._next_deadline[f._next_deadline < 10**8]).tolist())
    for i, sp in enumerate(setpoints):
        k = start + i
        owed0 = f.owed_kwh.copy()
        p = f.step(k, np.array(sp))
        assert np.isfinite(p).all() and (p <= ABS_KW).all()
        pb, pd, pr = f.p_batch_kw, f.p_curtailed_kw, f.p_rebound_kw
        # batch power: inside [0, R] of a released, unfinished batch only
        j = np.minimum(f._ptr, b.deadline.shape[1] - 1)
        rows = np.arange(2)
        inside = (b.release[rows, j] <= k) & (k < b.deadline[rows, j])
        assert (pb >= 0).all() and (pb <= b.rated_kw[rows, j] + ABS_KW).all() and (pb[~inside] == 0).all()
        assert (f._done_kwh <= b.requested_kwh + ABS_KWH).all()
        # curtailment and make-up: within their limits, never both, owed within [0, e_max]
        c_nom = f._c_nom_kw * f._frac[k]
        assert (pd >= 0).all() and (pd <= c_nom + ABS_KW).all()
        assert (pr >= 0).all() and (pr <= f.rebound_p_max_kw + ABS_KW).all() and not (pd * pr > 0).any()
        assert (f.owed_kwh >= 0).all() and (f.owed_kwh <= f.owed_max_kwh + ABS_KWH).all()
        # bookkeeping: owed' = max(owed + pd dt - pr dt / r, 0)
        expected = np.maximum(owed0 + pd * dt - pr * dt / f.rebound_factor, 0.0)
        np.testing.assert_allclose(f.owed_kwh, expected, atol=ABS_KWH)
        # nothing owed at a deadline
        if k + 1 in deadline_steps:
            np.testing.assert_allclose(f.owed_kwh, 0.0, atol=ABS_KWH)
        # power = -(base + batch - curtailed + make-up)
        np.testing.assert_allclose(p, -(f.p_base_kw + pb - pd + pr), atol=ABS_KW)
    # every batch due so far got its energy (the laxity rule)
    t = f.tables()["industry_batches"]
    due = t[t["latest_finish"] <= f.timeline.start + np.timedelta64(15 * (start + len(setpoints)), "m")]
    np.testing.assert_allclose(due["delivered_kwh"], due["requested_kwh"], atol=1e-6)


# -- honesty: a schedule inside the offered form is delivered by the physics --------


def _cheapest_plan(form: StorageLike, dt_h: float, price: np.ndarray):
    """Min sum price dt (pc - pd) + throughput + shortfall over the form's own
    constraints (hard energy bounds), solved with scipy's HiGHS simplex.

    Returns pc, pd (N, H) and e (N, H+1).
    """
    n, h = form.p_charge_max_kw.shape
    nv = 3 * h + 2           # per row: pc[h], pd[h], e[h+1] (e[0] fixed), shortfall u
    blocks = []
    for i in range(n):
        eta_c = float(np.broadcast_to(form.eta_charge, (n,))[i])
        eta_d = float(np.broadcast_to(form.eta_discharge, (n,))[i])
        c = np.zeros(nv)
        c[:h] = price * dt_h + form.throughput_cost_cny_per_kwh[i] * dt_h
        c[h:2 * h] = -price * dt_h + form.throughput_cost_cny_per_kwh[i] * dt_h
        c[-1] = form.shortfall_cost_cny_per_kwh[i]
        a_eq = lil_matrix((h + 1, nv))
        b_eq = np.zeros(h + 1)
        a_eq[0, 2 * h] = 1.0
        b_eq[0] = form.e_init_kwh[i]
        for t in range(h):   # e[t+1] - e[t] - eta_c dt pc + dt / eta_d pd = 0
            a_eq[t + 1, 2 * h + t + 1] = 1.0
            a_eq[t + 1, 2 * h + t] = -1.0
            a_eq[t + 1, t] = -eta_c * dt_h
            a_eq[t + 1, h + t] = dt_h / eta_d
        a_ub = np.zeros((1, nv))   # -(e[H] + u) <= -target
        a_ub[0, 3 * h] = -1.0
        a_ub[0, -1] = -1.0
        bounds = ([(0.0, form.p_charge_max_kw[i, t]) for t in range(h)]
                  + [(0.0, form.p_discharge_max_kw[i, t]) for t in range(h)]
                  + [(None, None)] + [(form.e_min_kwh[i, t], form.e_max_kwh[i, t]) for t in range(h)]
                  + [(0.0, None)])
        res = linprog(c, A_ub=a_ub, b_ub=[-form.e_target_kwh[i]], A_eq=a_eq.tocsr(), b_eq=b_eq,
                      bounds=bounds, method="highs-ds")
        assert res.status == 0, res.message
        blocks.append(res.x)
    x = np.array(blocks)
    return x[:, :h], x[:, h:2 * h], x[:, 2 * h:3 * h + 1]


@pytest.mark.parametrize("seed, k0", [(0, 40), (1, 40), (2, 20), (3, 20)])
def test_a_plan_inside_the_form_is_delivered_step_by_step(seed, k0):
    # 6 sites (2 curtailable), a 16-hour plan from 10:00 (batches partly done) or
    # from 05:00 (batches not yet released; the 06:00 deadline forces make-up).
    # Before k0 batches run uncontrolled and the curtailable sites curtail in the
    # last four steps, so the plan starts with something owed.
    f = _fleet(n=6, seed=seed, base_noise_frac=0.0)
    h = 64
    for k in range(k0):
        sp = f.baseline_setpoint(k)
        if k >= k0 - 4:
            sp = np.where(f.is_curtailable, 1e6, sp)
        f.step(k, sp)
    assert (f.owed_kwh[f.is_curtailable] > 0).all()
    grid = HorizonGrid(k0, np.ones(h, dtype=int), DT_H)
    forms = f.flexibility(grid, f.exo.window(k0, h))
    store = next(x for x in forms if isinstance(x, StorageLike))
    fixed = next(x for x in forms if isinstance(x, FixedProfile))
    rng = np.random.default_rng(seed)
    pc, pd, e = _cheapest_plan(store, DT_H, rng.uniform(0.2, 1.6, h))
    assert not (np.minimum(pc, pd) > PLAN_KW).any()      # a vertex plan: never both at once
    plan = pd - pc
    batch_site = ~f.is_curtailable
    rows = np.arange(6)
    j = np.array([np.flatnonzero(f.batches.deadline[i] > k0)[0] for i in range(6)])
    for t in range(h):
        p = f.step(k0 + t, plan[:, t])
        np.testing.assert_allclose(f.controllable_kw(), plan[:, t], atol=PLAN_KW, err_msg=f"step {t}")
        # with a perfect forecast and no noise, the fixed profile is the realised base load
        np.testing.assert_allclose(p.sum() - plan[:, t].sum(), fixed.p_kw[t], rtol=1e-12, atol=PLAN_KW)
        # the store's energy follows the plan: owed at curtailable sites, batch energy at batch sites
        e_phys = np.where(batch_site, f._done_kwh[rows, j], f.owed_max_kwh - f.owed_kwh)
        np.testing.assert_allclose(e_phys, e[:, t + 1], atol=PLAN_KWH, err_msg=f"energy after step {t}")


def test_forms_for_a_batch_released_later_in_the_horizon():
    # At 06:00 (step 24) the 08:00 batch is not released: no power before step 32,
    # 1800 kW from then until 14:00; due within the horizon -> target E.
    f = _fleet(**BATCH)
    for k in range(24):
        f.step(k, None)
    grid = HorizonGrid.build(24, DT_H, 4, 48, 4)     # 4 steps of 15 min, then hourly blocks
    store = f.flexibility(grid, f.exo.window(24, 48))[0]
    block_start = 24 + grid.starts
    in_window = np.clip(np.minimum(D, block_start + grid.steps_per_block) - np.maximum(A, block_start), 0, None)
    np.testing.assert_allclose(store.p_charge_max_kw[0], R_BATCH * in_window / grid.steps_per_block, atol=ABS_KW)
    assert store.e_target_kwh[0] == pytest.approx(E_BATCH)
    assert (store.p_discharge_max_kw == 0).all() and store.e_init_kwh[0] == pytest.approx(0.0)
    # the laxity envelope: 0 until the block ending at 12:00 (step 48), then 3600 - 1800 x 0.25 x (56 - t)
    ends = block_start + grid.steps_per_block
    expected = np.clip(E_BATCH - R_BATCH * DT_H * (D - np.minimum(ends, D)), 0.0, None)
    np.testing.assert_allclose(store.e_min_kwh[0], expected, atol=ABS_KWH)


# -- records and determinism --------------------------------------------------------


def test_batch_table_has_one_row_per_batch_of_the_run():
    f = _fleet(n=3, days=3, curtailable_site_share=0.0)
    for k in range(96 * 3):
        f.step(k, None)
    t = f.tables()["industry_batches"]
    # one batch per site and day released in the run (the day before's are done before the start)
    assert len(t) == 3 * 3
    assert set(t.columns) >= {"site", "earliest_start", "latest_finish", "requested_kwh", "delivered_kwh",
                              "unserved_kwh"}
    assert str(t["earliest_start"].dt.tz) == "Asia/Shanghai"
    done = t[t["due"]]
    np.testing.assert_allclose(done["unserved_kwh"], 0.0, atol=1e-6)
    assert t.loc[~t["due"], "unserved_kwh"].isna().all()


def test_deterministic_under_a_seed_and_different_across_seeds():
    def run(seed):
        f = _fleet(n=8, seed=seed)
        rng = np.random.default_rng(5)
        return np.array([f.step(k, rng.uniform(-3000, 1000, 8)) for k in range(96)])

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.allclose(run(3), run(4))
