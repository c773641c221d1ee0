"""The conformance suites can fail: each check is shown failing on a deliberately
broken fleet or strategy (a mutation check), and the balance check on results with
one recorded value perturbed.  None of these classes is registered."""

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL
from pydantic import BaseModel, ConfigDict

import vpp
from vpp.assets.battery import BatteryFleet
from vpp.assets.building import BuildingFleet
from vpp.assets.pv import PVFleet
from vpp.dispatch import Decision
from vpp.flex import FixedProfile, SharedLimit, StorageLike
from vpp.optimizer import STRATEGIES, Strategy
from vpp.optimizer.baseline import SourceFollowsLoad
from vpp.optimizer.rule_based import RuleBased
from vpp.testing import (
    FleetCase,
    RecordingStrategy,
    check_balance,
    check_setpoints,
    check_strategy,
    fleet_checks,
    strategy_checks,
)

BATTERY = {"p_max_kw": 500.0, "e_max_kwh": 1000.0}


# -- broken fleets --------------------------------------------------------------

class PassThroughBattery(BatteryFleet):
    """Delivers whatever finite power is asked: exceeds its own rating and energy."""

    type_name = "broken_limits"

    def _step(self, k, setpoint_kw):
        return np.nan_to_num(setpoint_kw, nan=0.0, posinf=0.0, neginf=0.0)


class UnseededBattery(BatteryFleet):
    """Draws its ratings from an unseeded generator, not from its own stream."""

    type_name = "broken_determinism"

    def __init__(self, ctx, params):
        super().__init__(ctx, params)
        self.p_max_kw = self.p_max_kw * np.random.default_rng().uniform(0.5, 1.0, self.n_assets)


class BoastfulBattery(BatteryFleet):
    """Offers twice the power its physics delivers."""

    type_name = "broken_honesty"

    def flexibility(self, grid, forecast):
        (f,) = super().flexibility(grid, forecast)
        return [StorageLike(**{**vars(f), "p_charge_max_kw": 2 * f.p_charge_max_kw,
                               "p_discharge_max_kw": 2 * f.p_discharge_max_kw})]


class MisplacedBattery(BatteryFleet):
    """Offers its form at another node than its own."""

    type_name = "broken_forms"

    def flexibility(self, grid, forecast):
        (f,) = super().flexibility(grid, forecast)
        return [StorageLike(**{**vars(f), "node": "elsewhere"})]


class MisshapenLimitBattery(BatteryFleet):
    """Offers a shared limit over its batteries with one block too many."""

    type_name = "broken_shared_limit"

    def flexibility(self, grid, forecast):
        (f,) = super().flexibility(grid, forecast)
        limit = np.full((1, grid.n_blocks + 1), 100.0)
        return [f, SharedLimit(self.name, self.node, np.zeros(self.n_assets, dtype=int), limit, limit)]


class ConsumingPV(PVFleet):
    """A source reporting its output with the load's sign."""

    type_name = "broken_sign"

    def _step(self, k, setpoint_kw):
        return -super()._step(k, setpoint_kw)


class UncappedPV(PVFleet):
    """Ignores curtailment caps."""

    type_name = "broken_caps"

    def _step(self, k, setpoint_kw):
        return super()._step(k, np.full(self.n_assets, np.inf))


class TimidBuilding(BuildingFleet):
    """Under a breaker, cuts half of what it is asked to."""

    type_name = "broken_trip_cut"

    def trip(self, k, flexible_frac, fixed_frac):
        return super().trip(k, flexible_frac / 2, fixed_frac / 2)


class ForgetfulBuilding(BuildingFleet):
    """Under a breaker, steps again from where the step ended, not from where it began."""

    type_name = "broken_trip_state"

    def trip(self, k, flexible_frac, fixed_frac):
        self._x_start = self.x_c
        return super().trip(k, flexible_frac, fixed_frac)


class OutageBlindBattery(BatteryFleet):
    """Stops while down, but its forms still offer the converter it lost."""

    type_name = "broken_outage_forms"

    def flexibility(self, grid, forecast):
        now = self.p_max_kw
        self.p_max_kw = self.__dict__.get("_rated", {}).get("p_max_kw", now)
        try:
            return super().flexibility(grid, forecast)
        finally:
            self.p_max_kw = now


class DeratingBattery(BatteryFleet):
    """Told that nothing is down, loses a tenth of its rating anyway."""

    type_name = "broken_outage_up"

    def set_outage(self, down):
        super().set_outage(down)
        self.p_max_kw = 0.9 * self.p_max_kw


UNBROKEN = {"storage": BatteryFleet, "source": PVFleet, "load": BuildingFleet}


def run_check(fleet, name, params=None):
    (check,) = [c for c in fleet_checks(FleetCase(fleet, params or {})) if c.name == name]
    check()


@pytest.mark.parametrize("fleet, check, params", [
    (PassThroughBattery, "check_fleet_limits", BATTERY),
    (UnseededBattery, "check_fleet_deterministic", BATTERY),
    (BoastfulBattery, "check_fleet_honest", BATTERY),
    (MisplacedBattery, "check_fleet_forms", BATTERY),
    (MisshapenLimitBattery, "check_fleet_forms", BATTERY),
    (ConsumingPV, "check_fleet_output_shape_and_sign", None),
    (UncappedPV, "check_fleet_curtailable_caps", None),
    (TimidBuilding, "check_fleet_trip", None),
    (ForgetfulBuilding, "check_fleet_trip", None),
    (OutageBlindBattery, "check_fleet_outage", BATTERY),
    (DeratingBattery, "check_fleet_outage", BATTERY),
], ids=lambda x: x if isinstance(x, str) else getattr(x, "type_name", ""))
def test_each_fleet_check_fails_on_its_broken_fleet(fleet, check, params):
    with pytest.raises(AssertionError, match=f"^{check} failed for {fleet.type_name}: "):
        run_check(fleet, check, params)
    run_check(UNBROKEN[fleet.role], check, params)   # the unbroken one passes


def test_every_fleet_check_has_a_broken_fleet():
    names = {c.name for cls in (PVFleet, BuildingFleet) for c in fleet_checks(FleetCase(cls))}
    shown = {"check_fleet_limits", "check_fleet_deterministic", "check_fleet_honest", "check_fleet_forms",
             "check_fleet_output_shape_and_sign", "check_fleet_curtailable_caps", "check_fleet_trip",
             "check_fleet_outage"}
    assert names == shown


# -- broken strategies ------------------------------------------------------------

def _storage_setpoints(problem, scale, rng=None):
    out = {}
    for f in problem.forms:
        if isinstance(f, StorageLike):
            n = problem.grid.n_fine
            u = rng.uniform(-1.0, 1.0, (f.n_assets, n)) if rng is not None else np.ones((f.n_assets, n))
            out[f.fleet] = scale * np.where(u < 0, u * f.p_charge_max_kw[:, :n], u * f.p_discharge_max_kw[:, :n])
    return out


class Overreaching(Strategy):
    """Asks storage for twice what it offers (the fleets clip it, so results look fine)."""

    name = "broken_setpoints"

    def decide(self, problem):
        return Decision(setpoints=_storage_setpoints(problem, 2.0), status="rule")


class Unseeded(Strategy):
    """Random storage setpoints inside the forms, from an unseeded generator."""

    name = "broken_strategy_determinism"

    def decide(self, problem):
        return Decision(setpoints=_storage_setpoints(problem, 1.0, np.random.default_rng()), status="rule")


class LooseOptions(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class CrashingOnOptions(SourceFollowsLoad):
    """Accepts any option key, then fails on it with a traceback."""

    name = "broken_options"
    Options = LooseOptions

    def __init__(self, options=None):
        super().__init__(options)
        for key in self.options.model_extra or {}:
            raise KeyError(key)


class IgnoringOptions(SourceFollowsLoad):
    """Accepts any option key silently."""

    name = "broken_options_ignored"
    Options = LooseOptions


class Uncommitted(RuleBased):
    """In a market, commits no position for the second half of each day."""

    name = "broken_commitment"

    def commit_kw(self, problem, d0, d1):
        out = np.zeros(d1 - d0)
        out[(d1 - d0) // 2:] = np.nan
        return out


@pytest.mark.parametrize("strategy, check, why", [
    (Overreaching(), "check_strategy_setpoints_within_forms",
     r"StorageLike\): setpoint row \d+, step \d+ is .*, outside"),
    (Unseeded(), "check_strategy_deterministic", "different setpoints"),
    (CrashingOnOptions(), "check_strategy_option_error", "raised KeyError"),
    (IgnoringOptions(), "check_strategy_option_error", "'no_such_option' was accepted"),
    (Uncommitted(), "check_strategy_in_market", "commitment .* is not finite"),
], ids=lambda x: x if isinstance(x, str) else getattr(x, "name", ""))
def test_each_strategy_check_fails_on_its_broken_strategy(strategy, check, why):
    (c,) = [c for c in strategy_checks(strategy) if c.name == check]
    with pytest.raises(AssertionError, match=f"^{check} failed for {strategy.name}: .*{why}"):
        c()
    assert strategy.name not in STRATEGIES       # the option check registered it only while it ran


def test_setpoints_outside_the_forms_pass_the_other_checks():
    """Only the raw-setpoint check sees them: the fleets clip what they are asked."""
    for c in strategy_checks(Overreaching()):
        if c.name in ("check_strategy_balance_and_limits", "check_strategy_deterministic"):
            c()


def test_check_setpoints_reads_every_form():
    """Thermal in [-p_max, 0], caps >= 0 and never NaN (inf allowed), finite storage, right shape."""
    rec = RecordingStrategy(SourceFollowsLoad())
    vpp.run(SMALL, strategy=rec)
    problem = rec.calls[0][0]
    forms = {f.fleet: f for f in problem.forms if not isinstance(f, FixedProfile)}
    n = problem.grid.n_fine

    def with_setpoint(fleet, value, shape=None):
        f = forms[fleet]
        return Decision(setpoints={fleet: np.full(shape or (f.n_assets, n), value)})

    check_setpoints(problem, with_setpoint("pv", np.inf))
    check_setpoints(problem, with_setpoint("offices", 0.0))
    for fleet, value, why in [("offices", 1.0, "Thermal.*outside"), ("pv", -1.0, "CurtailableSource.*outside"),
                              ("pv", np.nan, "is nan"), ("battery", np.inf, "is inf"),
                              ("offices", -1e9, "Thermal.*outside")]:
        with pytest.raises(AssertionError, match=why):
            check_setpoints(problem, with_setpoint(fleet, value))
    with pytest.raises(AssertionError, match="shape"):
        check_setpoints(problem, with_setpoint("battery", 0.0, shape=(forms["battery"].n_assets + 1, n)))


def test_a_researchers_strategy_runs_the_suite():
    """examples/custom_strategy.py's strategy passes check_strategy, as its docstring shows."""
    path = Path(__file__).resolve().parents[1] / "examples" / "custom_strategy.py"
    spec = importlib.util.spec_from_file_location("custom_strategy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check_strategy(module.CheapestHours())


# -- a broken balance ---------------------------------------------------------------

@pytest.fixture(scope="module")
def results():
    return vpp.run(SMALL, strategy="source_follows_load")


def _perturbed(res, frame, column, where):
    out = copy.copy(res)
    df = getattr(res, frame).copy()
    k = int(np.flatnonzero(where(df))[0])
    df.iloc[k, df.columns.get_loc(column)] += 1.0
    setattr(out, frame, df)
    return out


@pytest.mark.parametrize("frame, column, where, why", [
    ("nodes", ("city", "grid_import_kw"), lambda df: df[("city", "grid_import_kw")] > 10, "node 'city' at"),
    ("nodes", ("coast", "grid_export_kw"), lambda df: df[("coast", "grid_export_kw")] > 10, "node 'coast' at"),
    ("fleets", ("battery", "p_kw"), lambda df: df.index == df.index[40], "node 'city' at"),
    ("nodes", ("city", "curtailed_kw"), lambda df: df.index == df.index[50], "node 'city' at .*: recorded curtailment"),
], ids=["import", "export", "fleet power", "curtailment"])
def test_the_balance_check_fails_on_one_perturbed_value(results, frame, column, where, why):
    check_balance(results)
    with pytest.raises(AssertionError, match=f"energy balance: {why}"):
        check_balance(_perturbed(results, frame, column, where))


def test_the_balance_check_sees_an_engine_that_loses_a_fleets_power(monkeypatch):
    """Fleet power is recorded from each fleet's own output, the exchange from the
    engine: an engine that drops the loads from its node sums is caught
    (were both recorded from the engine's sums, the balance would close regardless)."""
    from vpp.engine import Engine

    step_storage = Engine._step_storage

    def losing(self, k, p_kw, net_loads, green):
        step_storage(self, k, p_kw, net_loads, green)
        p_kw[[j for j, f in enumerate(self.fleets) if f.role == "load"]] = 0.0

    monkeypatch.setattr(Engine, "_step_storage", losing)
    res = vpp.run(SMALL, strategy="source_follows_load")
    with pytest.raises(AssertionError, match="energy balance: node 'city' at"):
        check_balance(res)
