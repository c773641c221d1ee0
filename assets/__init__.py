"""Asset physics: one module per technology, each a vectorised fleet.

Fleets register their type name here; the scenario's ``type = "..."`` looks
them up, and each type's parameter model validates ``[fleets.params]``.
Assets know physics only: they never import Pyomo, the engine or dashboards.
"""

from __future__ import annotations

from vpp.assets.base import Fleet, FleetContext, FleetParams

__all__ = ["Fleet", "FleetContext", "FleetParams", "FLEET_TYPES", "register", "fleet_type"]

FLEET_TYPES: dict[str, type[Fleet]] = {}


def register(cls: type[Fleet]) -> type[Fleet]:
    """Class decorator: make *cls* available as ``type = cls.type_name``."""
    FLEET_TYPES[cls.type_name] = cls
    return cls


def fleet_type(name: str) -> type[Fleet]:
    """The fleet class registered as *name* (``KeyError`` if unknown)."""
    return FLEET_TYPES[name]


# Built-in fleets register themselves on import.
from vpp.assets import battery, building, datacentre, ev, industry, pv, tcl, wind  # noqa: E402,F401
