"""The fleet contract: a vectorised group of N assets of one technology.

A fleet offers three things (``docs/ARCHITECTURE.md``):

* physics: :meth:`Fleet.step` realises power for one simulation step,
  honouring the assets' own limits whatever the setpoint asks;
* :meth:`Fleet.flexibility`: what the optimizer may use over a horizon, in the
  canonical forms of :mod:`vpp.flex`;
* :meth:`Fleet.baseline_setpoint`: what the assets do uncontrolled ("source
  follows load").

Parameters are arrays of length N, state is arrays of length N, and the engine
calls Python once per fleet per step, never once per asset.

Sign: generator convention.  Power injected into the VPP bus is positive.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from vpp.arrivals import ArrivalRequests
from vpp.exogenous.series import Exogenous
from vpp.flex import Form, HorizonGrid
from vpp.params import InputModel
from vpp.timeline import Timeline

__all__ = ["Fleet", "FleetParams", "FleetContext", "WeatherDrivenSource"]


class FleetParams(InputModel):
    """Base of every fleet type's parameter model: frozen, no unknown keys, no NaN
    or infinity (except fields typed :data:`vpp.params.Limit`), no boolean where a
    number is meant (:class:`vpp.params.InputModel`).  A type adds its own
    cross-field checks (a reversed window, a start outside it) as a model validator."""


@dataclass(frozen=True)
class FleetContext:
    """What a fleet is given when it is created.

    Parameters
    ----------
    name, node : str
        The fleet's name and grid node.
    count : int
        Number of assets N.
    rng : numpy.random.Generator
        The fleet's own random stream (per-asset parameters, sessions, noise).
    timeline : Timeline
        Simulation steps (with horizon padding).
    exogenous : Exogenous
        Actual weather, prices and carbon on the padded timeline.
    """

    name: str
    node: str
    count: int
    rng: np.random.Generator
    timeline: Timeline
    exogenous: Exogenous


class Fleet(ABC):
    """Base class of all fleets.  Subclass, set the class attributes, register.

    Class attributes
    ----------------
    type_name : str
        Name used in scenario files (``type = "pv"``).
    Params : type of FleetParams
        The parameter model of ``[fleets.params]``.
    role : {"source", "load", "storage"}
        How the fleet's energy is counted in KPIs.
    green : bool
        Whether its generation is local green power.
    curtailable : bool
        Whether the engine's export limiter may cap its output.
    state_columns : tuple of str
        Aggregate state quantities reported by :meth:`state` after each step.
    """

    type_name: ClassVar[str]
    Params: ClassVar[type[FleetParams]]
    role: ClassVar[Literal["source", "load", "storage"]]
    green: ClassVar[bool] = False
    curtailable: ClassVar[bool] = False
    state_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: FleetContext, params: FleetParams):
        self.name = ctx.name
        self.node = ctx.node
        self.n_assets = ctx.count
        self.rng = ctx.rng
        self.timeline = ctx.timeline
        self.exo = ctx.exogenous
        self.params = params
        self.dt_h = ctx.timeline.dt_h
        self.last_p_kw = np.zeros(self.n_assets)

    # -- physics ---------------------------------------------------------
    def step(self, k: int, setpoint_kw: np.ndarray | None) -> np.ndarray:
        """Advance one step and return the realised power per asset.

        Parameters
        ----------
        k : int
            Simulation step (the interval ``[t_k, t_k + dt)``).
        setpoint_kw : ndarray, shape (n_setpoints,), or None
            Requested power, generator sign; a request, not a command.  For
            curtailable sources it caps the output.  ``None`` runs the
            uncontrolled baseline.  [kW]

        Returns
        -------
        ndarray, shape (N,)
            Realised mean power over the step, generator sign. [kW]
        """
        if setpoint_kw is None:
            setpoint_kw = self.baseline_setpoint(k)
        p = self._step(k, np.asarray(setpoint_kw, dtype=float))
        self.last_p_kw = p
        return p

    @abstractmethod
    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        """Physics of one step (subclasses); see :meth:`step`."""

    @abstractmethod
    def baseline_setpoint(self, k: int) -> np.ndarray:
        """The uncontrolled request for step *k*, generator sign. [kW]"""

    #: Per-asset rating arrays an outage sets to zero (:mod:`vpp.outages`); empty: no outage model.
    outage_ratings: ClassVar[tuple[str, ...]] = ()


    @classmethod
    def has_outage_model(cls) -> bool:
        """Whether the type implements :meth:`set_outage`: ratings an outage zeroes, or
        its own method."""
        return bool(cls.outage_ratings) or cls.set_outage is not Fleet.set_outage

    def set_outage(self, down: np.ndarray) -> None:
        """Take the ratings of the assets that are *down* away, and give the others theirs
        back (``NotImplementedError`` for a type without an outage model)."""
        if not self.outage_ratings:
            raise NotImplementedError(f"fleet type {self.type_name!r} has no outage model")
        if "_rated" not in self.__dict__:                 # the ratings as drawn, kept once
            self._rated = {name: np.array(getattr(self, name), dtype=float) for name in self.outage_ratings}
        rated = self._rated
        for name in self.outage_ratings:
            setattr(self, name, np.where(down, 0.0, rated[name]))

    def controllable_kw(self) -> np.ndarray:
        """The part of the last step's power that setpoints address, per setpoint
        row, generator sign (all of it unless a fleet has an uncontrollable part,
        such as a building's base load). [kW]"""
        return self.last_p_kw

    @property
    def n_setpoints(self) -> int:
        """Rows of a setpoint and of the fleet's controllable forms: one per asset,
        unless each asset has several controllable parts (a data centre's batch
        work and its UPS: two rows per site, all sites' first parts first)."""
        return self.n_assets

    # -- a hard node limit (a breaker) cuts the last step's draw ---------
    def draw_kw(self) -> tuple[float, float]:
        """Loads: the last step's consumption a breaker may cut, ``(flexible,
        fixed)``, both >= 0 [kW].  Flexible is what the setpoints address (cut
        first); fixed is the rest (cut last, and reported as unserved)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be shed by a hard node limit")

    def trip(self, k: int, flexible_frac: float, fixed_frac: float) -> np.ndarray:
        """Cut the given fractions of the last step's flexible and fixed draw
        (:meth:`draw_kw`) as a breaker would, so that the state follows the power
        actually drawn (a building warms, a car charges less, a batch runs
        later).  Returns and records the new power per asset, generator sign. [kW]"""
        raise NotImplementedError(f"{type(self).__name__} cannot be shed by a hard node limit")

    @classmethod
    def sheddable(cls) -> bool:
        """Whether the fleet implements :meth:`draw_kw` and :meth:`trip`."""
        return cls.trip is not Fleet.trip and cls.draw_kw is not Fleet.draw_kw

    def available_kw(self, k: int) -> np.ndarray:
        """Curtailable sources: power available before curtailment at step *k*. [kW]"""
        raise NotImplementedError(f"{type(self).__name__} is not curtailable")

    # -- flexibility -----------------------------------------------------
    @abstractmethod
    def flexibility(self, grid: HorizonGrid, forecast: Exogenous) -> list[Form]:
        """What the fleet offers over *grid*, seen through *forecast*.

        ``forecast`` covers the steps ``grid.k0 .. grid.k0 + grid.n_steps - 1``.
        A schedule inside the offered forms must be deliverable by the physics
        (up to the forecast error).
        """

    # -- events and records ----------------------------------------------
    def event_steps(self) -> np.ndarray:
        """Steps at which discrete events (arrivals, departures) happen."""
        return np.empty(0, dtype=np.int64)

    def apply_events(self, k: int) -> None:  # noqa: B027 - optional hook, no-op by default
        """Apply the discrete events due at the start of step *k*."""

    # -- queueing customers (EV charging): the engine runs the queue ------
    def arrival_requests(self) -> ArrivalRequests | None:
        """Customers who queue for this fleet's servers, or ``None`` (most fleets).

        A fleet that returns requests also implements :meth:`server_station`,
        :meth:`plug`, :meth:`unplug` and :meth:`balk`; the engine grants
        servers first come, first served (:mod:`vpp.queueing`).
        """
        return None

    def server_station(self) -> np.ndarray:
        """Station index of each asset (server). [-]"""
        raise NotImplementedError

    def plug(self, k: int, request_ids: np.ndarray, servers: np.ndarray) -> np.ndarray:
        """Customers *request_ids* take *servers* (one each, in order) at the start
        of step *k*; return their departure steps."""
        raise NotImplementedError

    def unplug(self, k: int, servers: np.ndarray) -> None:
        """The customers on *servers* leave at the start of step *k*."""
        raise NotImplementedError

    def balk(self, k: int, request_id: int) -> None:
        """Customer *request_id* left at step *k* without being served."""
        raise NotImplementedError

    def state(self) -> dict[str, float]:
        """Aggregate state after the last step, keyed by :attr:`state_columns`."""
        return {}

    def info(self) -> dict[str, float]:
        """Static totals for reporting (e.g. ``capacity_kwh``, ``p_rated_kw``)."""
        return {}

    def tables(self) -> dict[str, pd.DataFrame]:
        """Per-record tables at the end of a run (e.g. EV sessions)."""
        return {}


class WeatherDrivenSource(Fleet):
    """A curtailable green source whose available power is a pure function of
    the weather (PV, wind): evaluated for all assets over chunks of steps (up
    to a day) and cached, so the engine's per-step calls only index the cache.

    The setpoint caps the output: ``p = min(available, max(setpoint, 0))``;
    ``inf`` (the uncontrolled baseline) or NaN (no request) mean no cap.
    Subclasses implement :meth:`_available_chunk_kw`.
    """

    role = "source"
    green = True
    curtailable = True
    state_columns = ("p_available_kw",)
    cells_per_chunk: ClassVar[int] = 2**18  # assets x steps evaluated at once (memory bound)

    def __init__(self, ctx: FleetContext, params: FleetParams):
        super().__init__(ctx, params)
        steps_per_day = max(1, round(24.0 / self.dt_h))
        self._chunk = int(np.clip(self.cells_per_chunk // max(self.n_assets, 1), 1, steps_per_day))
        self._cache_k0 = -1
        self._cache = np.empty((self.n_assets, 0))
        self._last_available_kw = np.zeros(self.n_assets)
        self._up = np.ones(self.n_assets)          # 0 for an asset that is down (vpp.outages)


    def set_outage(self, down: np.ndarray) -> None:
        """Down assets make no power (their available power is zero)."""
        self._up = np.where(down, 0.0, 1.0)

    @abstractmethod
    def _available_chunk_kw(self, k0: int, n: int) -> np.ndarray:
        """Available power per asset for steps ``k0 .. k0+n-1``, shape (N, n). [kW]"""

    def available_kw(self, k: int) -> np.ndarray:
        """Power available before curtailment at step *k*, per asset. [kW]"""
        if not 0 <= k < len(self.exo):
            raise IndexError(f"step {k} outside the weather (0..{len(self.exo) - 1})")
        if not self._cache_k0 <= k < self._cache_k0 + self._cache.shape[1]:
            k0 = k - k % self._chunk
            self._cache = self._available_chunk_kw(k0, min(self._chunk, len(self.exo) - k0))
            self._cache_k0 = k0
        return self._cache[:, k - self._cache_k0] * self._up

    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        available = self.available_kw(k)
        self._last_available_kw = available
        cap = np.nan_to_num(np.broadcast_to(setpoint_kw, available.shape), nan=np.inf)
        return np.minimum(available, np.maximum(cap, 0.0))

    def baseline_setpoint(self, k: int) -> np.ndarray:
        """No curtailment: ``+inf`` for every asset. [kW]"""
        return np.full(self.n_assets, np.inf)

    def state(self) -> dict[str, float]:
        return {"p_available_kw": float(self._last_available_kw.sum())}


def resolve_data_path(value: str, base_dir) -> Path:
    """A data file a fleet parameter names: absolute, or relative to the scenario's folder,
    the working directory or the shipped scenarios; ``ValueError`` (one line) if none has it."""
    p = Path(value)
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = [Path(base_dir) / p] if base_dir is not None else []
        candidates += [Path.cwd() / p, Path(str(resources.files("vpp.scenarios"))) / p]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ValueError(f"no such file: {value} (looked in {', '.join(str(c.parent) for c in candidates)})")
