"""``source_follows_load``: the counterfactual baseline (源随荷动).

Loads run uncontrolled (buildings hold their thermostat setpoints, EVs charge
at full power on arrival), storage stays idle, and the upstream grid covers
the residual; the engine's export limiter curtails surplus beyond a node's
export limit.  No optimizer, no forecasts.
"""

from __future__ import annotations

from vpp.dispatch import Decision
from vpp.optimizer.base import Strategy, register

__all__ = ["SourceFollowsLoad"]


@register
class SourceFollowsLoad(Strategy):
    """Every fleet runs its uncontrolled baseline."""

    name = "source_follows_load"
    uses_forecasts = False

    def decide(self, problem) -> Decision:
        return Decision(status="uncontrolled")
