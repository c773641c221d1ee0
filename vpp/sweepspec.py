"""Sweep specifications: a base scenario, the parameters to vary, seeds, strategies (vocabulary).

A sweep file (TOML) names a base scenario and what to vary::

    scenario = "../scenarios/shanghai_lingang.toml"   # relative to this file; default: the embedded one
    strategies = ["source_follows_load", "virtual_battery"]
    replications = 5                      # seeds: the scenario's seed + 0..4 (or seeds = [1, 2, 3])

    [parameters]                          # dotted paths into the scenario, each with its values
    "fleets.rooftop_pv.count" = [100, 300, 1000]

    [scales.renewables]                   # one factor applied to several numbers at once
    fields = ["fleets.rooftop_pv.count", "fleets.offshore_wind.count"]
    values = [0.5, 1, 2, 4]

``design = "product"`` (default) runs every combination of the parameters' and
scales' values; ``design = "points"`` runs the listed ``[[points]]`` only (each a
table of dotted path = value).  A path walks tables by key and arrays of named
tables (``fleets``, ``nodes``) by ``name`` (or by index).  A value that is a
table merges into the scenario's table, so values that go together vary
together (``"time" = [{start = 2024-01-15T00:00:00, end = 2024-01-22T00:00:00},
...]``).  A scaled integer (a count) is rounded to the nearest integer, halves up.

:func:`load_sweep_spec` reads and checks a file; :meth:`SweepSpec.expand` gives
the points and :func:`apply_point` turns the base scenario dict into a point's.
"""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from vpp.errors import FieldError, ScenarioError, field_path
from vpp.params import InputModel
from vpp.scenario import merge, read_scenario_dict, read_toml, validation_error

__all__ = ["SweepSpec", "ScaleConfig", "load_sweep_spec", "apply_point", "check_paths", "read_base",
           "DEFAULT_STRATEGIES"]

DEFAULT_STRATEGIES = ("source_follows_load", "source_load_interaction")


class ScaleConfig(InputModel):
    """A factor applied to several numbers of the scenario at once (e.g. every
    renewable fleet's count)."""

    fields: list[str] = Field(min_length=1)
    """Dotted paths of the numbers the factor multiplies, each set in the scenario
    (``"fleets.rooftop_pv.count"``); a scaled integer (a count) is rounded to the nearest, halves up."""
    values: list[float] = Field(min_length=1)
    """The factors the sweep runs, each at least 0 (1: the scenario's own numbers). [-]"""

    @model_validator(mode="after")
    def _positive(self):
        for i, v in enumerate(self.values):
            if v < 0:
                raise FieldError(("values", i), f"{v} is negative; a scale factor is at least 0")
        return self


class SweepSpec(InputModel):
    """A sweep: base scenario, varied parameters, seeds and strategies (see the module doc)."""

    scenario: str | None = None
    """The base scenario file, relative to the sweep file; unset: the default scenario shipped with the
    package (``shanghai_lingang.toml``)."""
    strategies: list[str] = Field(default_factory=lambda: list(DEFAULT_STRATEGIES), min_length=1)
    """The strategies run at every point and seed; the baseline ``source_follows_load`` is always run and
    recorded as well."""
    seeds: list[int] | None = Field(None, min_length=1)
    """The seeds every point runs with, replacing the scenario's (give this or ``replications``). [-]"""
    replications: int | None = Field(None, ge=1, le=10_000)
    """Runs per point, with the scenario's seed + 0, 1, ...; with neither this nor ``seeds``, one run on
    the scenario's seed. [-]"""
    design: str = Field("product", pattern="^(product|points)$")
    """``"product"`` (default): every combination of the values of ``parameters`` and ``scales``;
    ``"points"``: the listed ``[[points]]`` only."""
    parameters: dict[str, list[Any]] = Field(default_factory=dict)
    """Dotted path into the scenario (``"fleets.rooftop_pv.count"``) -> the values it takes; a table
    value merges into the scenario's table there."""
    scales: dict[str, ScaleConfig] = Field(default_factory=dict)
    """Named factors, each applied to several numbers at once; see [scales.NAME]."""
    points: list[dict[str, Any]] = Field(default_factory=list)
    """With ``design = "points"``, the points to run: each a table of dotted path = value, every point
    setting the same paths."""
    keep_results: bool = False           # also save each run's full results (series, tables, report)
    base_dir: Path = Field(Path("."), exclude=True)
    """The sweep file's folder, set by the loader (internal)."""
    source: str = Field("<sweep>", exclude=True)
    """The sweep file's path, for messages; set by the loader (internal)."""

    @model_validator(mode="after")
    def _consistent(self):
        if self.seeds is not None and self.replications is not None:
            raise FieldError(("replications",), "give seeds or replications, not both")
        for path, values in self.parameters.items():
            if not values:
                raise FieldError(("parameters", path), "has no values")
        clash = set(self.parameters) & set(self.scales)
        if clash:
            raise FieldError(("scales", sorted(clash)[0]), "is also a parameter; name the scale differently")
        if self.design == "points":
            if not self.points:
                raise FieldError(("points",), 'design = "points" needs at least one [[points]] table')
            if self.parameters or self.scales:
                raise FieldError(("design",), 'with design = "points" give the values in [[points]], '
                                              "not in [parameters] or [scales]")
            keys = set(self.points[0])
            for i, p in enumerate(self.points):
                if not p:
                    raise FieldError(("points", i), "is empty")
                if set(p) != keys:
                    raise FieldError(("points", i), f"sets {sorted(p)}, the first point {sorted(keys)}; "
                                                    "every point sets the same paths")
        elif self.points:
            raise FieldError(("points",), 'is read only with design = "points"')
        return self

    @property
    def varied(self) -> list[str]:
        """The names of what varies: parameter paths, then scale names."""
        if self.design == "points":
            return list(self.points[0])
        return list(self.parameters) + list(self.scales)

    def expand(self) -> list[dict[str, Any]]:
        """Every point: varied name -> value (one empty point when nothing varies)."""
        if self.design == "points":
            return [dict(p) for p in self.points]
        names = self.varied
        grids = [self.parameters[n] if n in self.parameters else self.scales[n].values for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]

    def seeds_for(self, scenario_seed: int) -> list[int]:
        """The seeds each point runs with."""
        if self.seeds is not None:
            return list(self.seeds)
        return [scenario_seed + i for i in range(self.replications or 1)]

    def scenario_path(self) -> Path | None:
        return None if self.scenario is None else self.base_dir / self.scenario


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; one-line :class:`ScenarioError` naming the file and field."""
    path = Path(path)
    data = read_toml(path, "sweep")
    try:
        return SweepSpec.model_validate({**data, "base_dir": path.parent, "source": str(path)})
    except ValidationError as e:
        raise validation_error(str(path), e) from None


# -- dotted paths into a scenario dict ----------------------------------------------------------------------

def _step(node, key: str, path: str, create: bool):
    """The child of *node* named *key*: a table's key, or an array entry by name or index."""
    if isinstance(node, dict):
        if key not in node:
            if not create:
                raise FieldError((), f"{path!r}: the scenario has no {key!r} here (it has: {', '.join(node)})")
            node[key] = {}
        return node[key]
    if isinstance(node, list):
        for entry in node:
            if isinstance(entry, dict) and entry.get("name") == key:
                return entry
        if key.isdigit() and int(key) < len(node):
            return node[int(key)]
        names = [str(e.get("name")) for e in node if isinstance(e, dict)]
        raise FieldError((), f"{path!r}: no entry named {key!r} (there are: {', '.join(names)})")
    raise FieldError((), f"{path!r}: {key!r} is inside a value, not a table")


def _parent(data: dict, path: str, create: bool) -> tuple[dict, str]:
    keys = path.split(".")
    if not all(keys):
        raise FieldError((), f"{path!r} is not a dotted path (e.g. fleets.pv.count)")
    node = data
    for key in keys[:-1]:
        node = _step(node, key, path, create)
    if not isinstance(node, dict):
        raise FieldError((), f"{path!r}: its last part must name a field of a table")
    return node, keys[-1]


def _scaled(value, factor: float, path: str):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError((), f"{path!r} is {value!r} in the scenario; only a number can be scaled")
    return int(math.floor(value * factor + 0.5)) if isinstance(value, int) else value * factor   # half up


def _scale(data: dict, path: str, factor: float) -> None:
    """Multiply the number at *path* of *data* by *factor*; it must be set there."""
    node, key = _parent(data, path, create=False)
    if key not in node:
        raise FieldError((), f"{path!r} is not set in the scenario; set it there to scale it")
    node[key] = _scaled(node[key], factor, path)


def apply_point(base: dict, spec: SweepSpec, point: dict[str, Any], seed: int) -> dict:
    """The base scenario dict with *point*'s values and *seed* (a new dict; *base* is untouched)."""
    data = copy.deepcopy(base)
    for name, value in point.items():
        if name in spec.scales:
            for path in spec.scales[name].fields:
                _scale(data, path, value)
        else:
            node, key = _parent(data, name, create=True)
            node[key] = merge(node[key], value) if isinstance(value, dict) and isinstance(node.get(key), dict) \
                else value
    data["seed"] = seed
    return data


def check_paths(spec: SweepSpec, base: dict) -> None:
    """Refuse, naming the sweep file and field, a path the base scenario cannot take."""
    where = ([("parameters", p) for p in spec.parameters]
             + [("scales", n, "fields", i) for n, s in spec.scales.items() for i in range(len(s.fields))]
             + [("points", i, p) for i, pt in enumerate(spec.points) for p in pt])
    for loc in where:
        path = spec.scales[loc[1]].fields[loc[3]] if loc[0] == "scales" else loc[-1]
        try:
            if loc[0] == "scales":
                _scale(copy.deepcopy(base), path, 1.0)
            else:
                _parent(copy.deepcopy(base), path, create=True)
        except FieldError as e:
            raise ScenarioError(spec.source, field_path(loc), str(e)) from None


def read_base(spec: SweepSpec, default: Path) -> tuple[dict, Path, str]:
    """(the base scenario dict with ``extends`` followed, its folder, its name for messages)."""
    path = spec.scenario_path() or default
    return read_scenario_dict(path), path.parent, str(path)
