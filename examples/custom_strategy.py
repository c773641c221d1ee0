"""A researcher's own strategy: subclass, register, run.

``cheapest_hours`` is a rule-based battery schedule that needs no optimizer:
every storage asset that can discharge (a battery; EV sessions cannot)
charges at full power in the cheapest hours of the horizon and discharges in
the dearest, everything else runs uncontrolled.  It shows what a strategy
sees (:class:`vpp.dispatch.DispatchProblem`: the horizon, prices, carbon,
node limits and each fleet's flexibility forms) and what it returns
(:class:`vpp.dispatch.Decision`: setpoints per fleet, one row per asset, one
column per simulation step, kW, generator sign).

Run it: ``python examples/custom_strategy.py [SCENARIO]``

Check it against the conformance suite every built-in strategy passes (energy
balance, limits, setpoints inside the offered forms, determinism, option
errors); it raises ``AssertionError`` naming the check that fails::

    >>> from vpp.testing import check_strategy
    >>> check_strategy(CheapestHours())
"""

from __future__ import annotations

import sys

import numpy as np
from pydantic import Field

import vpp
from vpp.dispatch import Decision, DispatchProblem
from vpp.flex import StorageLike
from vpp.optimizer import Strategy, StrategyOptions, register


class CheapestHoursOptions(StrategyOptions):
    """Options, validated from ``[strategy.options]`` when the scenario names this strategy."""

    spread_frac: float = Field(0.25, gt=0, lt=0.5)  # cheapest/dearest share of the horizon


@register
class CheapestHours(Strategy):
    """Charge storage in the cheapest hours, discharge in the dearest."""

    name = "cheapest_hours"
    Options = CheapestHoursOptions

    def decide(self, problem: DispatchProblem) -> Decision:
        g = problem.grid
        price = problem.price_import_cny_per_kwh
        cheap = price <= np.quantile(price, self.options.spread_frac)
        dear = price >= np.quantile(price, 1 - self.options.spread_frac)
        n = g.n_fine                      # setpoints for the steps until the next decision
        setpoints = {}
        for form in problem.forms:
            if isinstance(form, StorageLike) and (form.p_discharge_max_kw > 0).any():
                p = np.where(cheap, -form.p_charge_max_kw, np.where(dear, form.p_discharge_max_kw, 0.0))
                setpoints[form.fleet] = p[:, :n]   # the physics clips to what the SOC allows
        return Decision(setpoints=setpoints, status="rule")


if __name__ == "__main__":
    scenario = sys.argv[1] if len(sys.argv) > 1 else None
    res = vpp.run(scenario, strategy="cheapest_hours")
    print(res.kpis.loc[["green_local_consumption_rate", "total_cost_cny", "co2_kg", "battery_cycles"],
                       ["value", "baseline", "delta"]].to_string())
