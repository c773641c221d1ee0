"""How much memory a scenario needs at least, checked before anything is allocated.

``count = 1e9`` used to start allocating and die of a memory error minutes in.
:func:`check_memory` refuses, in one line naming the fleet's ``count``, a
scenario whose *lower bound* of memory exceeds what the machine has available.
The bound only counts what certainly exists (so it never refuses a run that
would fit):

* each fleet draws every per-asset parameter (each field that takes a number or
  a distribution) as one float64 array of ``count``, and keeps at least
  :data:`MIN_ARRAYS_PER_ASSET` arrays of state;
* a fleet named in ``output.per_asset`` records each asset's power at every
  step of the padded timeline (float64);
* the timeline's series: weather, prices and carbon, and the records of every
  fleet and node, at least :data:`MIN_SERIES_PER_FLEET` float64 series per
  fleet and node and :data:`MIN_EXOGENOUS_SERIES` more at every step.

Everything else a run allocates (EV sessions, air conditioners' sub-steps,
the optimizer's model) comes on top: a scenario under the bound can still be
too large, but one over it cannot run.  The available memory is Linux's
``MemAvailable`` (``/proc/meminfo``), else the free physical pages; where
neither is known the check is skipped.
"""

from __future__ import annotations

import os
import typing

from vpp.errors import ScenarioError

__all__ = ["MIN_ARRAYS_PER_ASSET", "MIN_SERIES_PER_FLEET", "MIN_EXOGENOUS_SERIES", "available_memory_bytes",
           "fleet_memory_lower_bound", "check_memory"]

MIN_ARRAYS_PER_ASSET = 4          # state every fleet keeps per asset (power, energy or temperature, limits)
MIN_SERIES_PER_FLEET = 4          # power, setpoint, available up and down: recorded per fleet and per node
MIN_EXOGENOUS_SERIES = 8          # GHI, DNI, DHI, temperature, pressure, wind, import and export price


def available_memory_bytes() -> int | None:
    """Memory the machine can give a new process now [bytes]; ``None`` if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _per_asset_fields(params_model) -> int:
    """Fields of a fleet's parameter model that are drawn per asset (number or distribution)."""
    from vpp.params import Uniform

    def admits_distribution(annotation) -> bool:
        args = typing.get_args(annotation)
        return annotation is Uniform or any(admits_distribution(a) for a in args if not isinstance(a, str | int))

    return sum(admits_distribution(f.annotation) for f in params_model.model_fields.values())


def fleet_memory_lower_bound(count: int, params_model, n_steps: int, per_asset: bool) -> int:
    """The least memory a fleet of *count* assets takes [bytes] (see the module notes)."""
    arrays = max(MIN_ARRAYS_PER_ASSET, _per_asset_fields(params_model))
    return 8 * count * (arrays + (n_steps if per_asset else 0))


def _size(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


def check_memory(scenario, params_models, source: str, available: int | None = None) -> None:
    """Refuse *scenario* if its fleets' lower bound of memory exceeds what is available.

    Parameters
    ----------
    scenario : Scenario
    params_models : sequence of type
        Each fleet's parameter model (its type's ``Params``), in the scenario's order.
    source : str
        The file named in the message.
    available : int, optional
        Bytes available (default: :func:`available_memory_bytes`).

    Raises
    ------
    ScenarioError
        At ``fleets[i].count`` of the largest fleet, one line with both sizes.
    """
    available = available_memory_bytes() if available is None else available
    if available is None:
        return
    n_steps = scenario.timeline().n_total
    recorded = set(scenario.output.per_asset)
    needs = [fleet_memory_lower_bound(f.count, model, n_steps, f.name in recorded)
             for f, model in zip(scenario.fleets, params_models, strict=True)]
    series = 8 * n_steps * (MIN_SERIES_PER_FLEET * (len(scenario.fleets) + len(scenario.nodes)) + MIN_EXOGENOUS_SERIES)
    total = sum(needs) + series
    if total <= available:
        return
    if series >= max(needs):
        raise ScenarioError(source, "time.end", f"{n_steps:,} steps (with the forecast horizon) need at least "
                                                f"{_size(series)} of memory for their series, and this machine "
                                                f"has {_size(available)} available")
    i = max(range(len(needs)), key=needs.__getitem__)
    f = scenario.fleets[i]
    recording = " and its per-asset records" if f.name in recorded else ""
    others = f"; with the other fleets and the series {_size(total)}" if total > 1.05 * needs[i] else ""
    raise ScenarioError(source, f"fleets[{i}].count",
                        f"{f.count:,} assets need at least {_size(needs[i])} of memory for their per-asset "
                        f"arrays{recording}{others}, and this machine has {_size(available)} available")
