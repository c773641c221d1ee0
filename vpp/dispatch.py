"""What the engine hands a strategy, and what a strategy hands back.

A strategy is a pure decision function: given a :class:`DispatchProblem`
(forecasts, grid limits and the fleets' flexibility forms over a horizon) it
returns a :class:`Decision` (setpoints for the next dispatch interval).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vpp.dr import DREvent
from vpp.flex import Form, HorizonGrid

__all__ = ["NodeLimits", "DispatchProblem", "Decision"]


@dataclass(frozen=True)
class NodeLimits:
    """A grid connection point of the VPP.

    Parameters
    ----------
    name : str
    import_limit_kw, export_limit_kw : float
        Connection limits (>= 0). [kW]
    """

    name: str
    import_limit_kw: float
    export_limit_kw: float


@dataclass(frozen=True, eq=False)
class DispatchProblem:
    """One rolling-horizon window.

    Parameters
    ----------
    grid : HorizonGrid
    nodes : tuple of NodeLimits
    forms : tuple of Form
        Every fleet's flexibility (and uncontrollable profiles) over the grid.
    price_import_cny_per_kwh, price_export_cny_per_kwh : ndarray, shape (H,)
        Energy price paid for import and earned for export, block means. [CNY/kWh]
    co2_kg_per_kwh : ndarray, shape (H,)
        Carbon intensity of imported electricity. [kg/kWh]
    peak_import_so_far_kw : ndarray
        Highest settled import already metered in the billing period, one value
        for ``settlement="vpp"``, one per node for ``"node"``. [kW]
    demand_charge_cny_per_kw : float
        Charge on the billing period's peak import, pro rata for the run. [CNY/kW]
    settlement : {"vpp", "node"}
        Whether the VPP settles its net exchange (nodes net against each
        other) or each node settles its own import and export.
    vpp_import_limit_kw, vpp_export_limit_kw : float
        Limits on the VPP's net exchange with the upstream grid (``inf``: none). [kW]
    ramp_limit_kw_per_h : float
        Limit on the change of the VPP's net exchange from block to block
        (``inf``: none). [kW/h]
    net_import_prev_kw : float
        The VPP's net import in the step before the window (the ramp's start). [kW]
    dr_events : tuple of DREvent
        Demand-response calls announced by the window's start that have not
        ended (:mod:`vpp.dr`); steps are absolute (``grid.k0`` is the window's).
    position_kw : ndarray, shape (H,), optional
        In a two-settlement market, the VPP's committed day-ahead net import per
        block (NaN where not yet committed); the import and export prices are
        then the expected real-time price.  ``None`` under a tariff. [kW]
    deviation_tolerance_frac, deviation_penalty_cny_per_kwh : float
        Deviations from the position beyond this share of it pay this penalty.
    """

    grid: HorizonGrid
    nodes: tuple[NodeLimits, ...]
    forms: tuple[Form, ...]
    price_import_cny_per_kwh: np.ndarray
    price_export_cny_per_kwh: np.ndarray
    co2_kg_per_kwh: np.ndarray
    peak_import_so_far_kw: np.ndarray
    demand_charge_cny_per_kw: float = 0.0
    settlement: Literal["vpp", "node"] = "vpp"
    vpp_import_limit_kw: float = float("inf")
    vpp_export_limit_kw: float = float("inf")
    ramp_limit_kw_per_h: float = float("inf")
    net_import_prev_kw: float = 0.0
    dr_events: tuple[DREvent, ...] = ()
    position_kw: np.ndarray | None = None
    deviation_tolerance_frac: float = 0.0
    deviation_penalty_cny_per_kwh: float = 0.0

    def __post_init__(self):
        names = {n.name for n in self.nodes}
        stray = sorted({f.node for f in self.forms} - names)
        if stray:
            # a form at an unknown node would sit in no balance row: free energy
            raise ValueError(f"forms at nodes {', '.join(map(repr, stray))} that the problem does not have "
                             f"(nodes: {', '.join(map(repr, sorted(names)))})")


@dataclass
class Decision:
    """Setpoints for the next ``n_steps`` simulation steps.

    Parameters
    ----------
    setpoints : dict of str to ndarray, shape (N, n_steps)
        Requested power per asset, generator sign, for each controlled fleet;
        for curtailable sources the value is a cap on output (``inf`` = none).
        Fleets absent from the dict run uncontrolled (their baseline). [kW]
    status : str
        ``"optimal"``, ``"uncontrolled"`` or the reason for a fallback.
    fallback : bool
        True when the strategy failed and the baseline ran instead.
    metrics : dict of str to float
        Anything else the strategy wants recorded per window (e.g. slack use,
        iterations, the planned aggregate); each key becomes a column of
        :attr:`vpp.results.Results.dispatch`.
    """

    setpoints: dict[str, np.ndarray] = field(default_factory=dict)
    status: str = "uncontrolled"
    fallback: bool = False
    build_time_s: float = 0.0
    solve_time_s: float = 0.0
    objective_cny: float = float("nan")
    n_variables: int = 0
    n_constraints: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    def check(self, n_setpoints: dict[str, int], strategy: str) -> None:
        """Raise ``ValueError`` naming the strategy and fleet if the setpoints are malformed.

        Parameters
        ----------
        n_setpoints : dict of str to int
            Setpoint rows of every fleet in the run (``Fleet.n_setpoints``: one
            per asset, or per controllable part of an asset).
        strategy : str
            The strategy's name, for the message.
        """
        for fleet, sp in self.setpoints.items():
            if fleet not in n_setpoints:
                raise ValueError(f"strategy {strategy!r} returned setpoints for unknown fleet {fleet!r} "
                                 f"(fleets: {', '.join(sorted(n_setpoints))})")
            shape = np.shape(sp)
            if len(shape) != 2 or shape[0] != n_setpoints[fleet] or shape[1] < 1:
                raise ValueError(
                    f"strategy {strategy!r}: setpoints for fleet {fleet!r} have shape {shape}; expected "
                    f"({n_setpoints[fleet]}, n_steps): one row per asset (or controllable part of one, "
                    f"as the fleet's forms have), one column per simulation step from the dispatch time, "
                    f"in kW, generator sign")

