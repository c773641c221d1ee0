"""Dispatch strategies and the Pyomo/HiGHS dispatch model.

The optimizer knows the canonical flexibility forms (:mod:`vpp.flex`) and
forecasts, never the engine, SimPy or the assets.
"""

from vpp.optimizer.base import STRATEGIES, Strategy, StrategyOptions, register, strategy_class
from vpp.optimizer.baseline import SourceFollowsLoad
from vpp.optimizer.interaction import InteractionOptions, SourceLoadInteraction
from vpp.optimizer.lp import CompiledLP, SolverOptions
from vpp.optimizer.model import DispatchModel, Weights
from vpp.optimizer.price_signal import PriceSignal, PriceSignalOptions  # noqa: F401  (registers it)
from vpp.optimizer.rule_based import RuleBased, RuleOptions  # noqa: F401  (registers it)
from vpp.optimizer.virtual_battery import VirtualBattery, VirtualBatteryOptions  # noqa: F401  (registers it)

__all__ = [
    "STRATEGIES",
    "Strategy",
    "StrategyOptions",
    "register",
    "strategy_class",
    "SourceFollowsLoad",
    "SourceLoadInteraction",
    "InteractionOptions",
    "DispatchModel",
    "Weights",
    "CompiledLP",
    "SolverOptions",
]
