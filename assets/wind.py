"""Wind turbines: a fleet of N turbines of one type, from a tabulated power curve.

Per step and turbine:

1. hub-height wind from the regime's speed at its reference height, by the
   power law ``v = v_ref (h / h_ref)^alpha`` or the logarithmic law
   ``v = v_ref ln(h / z0) / ln(h_ref / z0)`` (e.g. Manwell, McGowan & Rogers,
   *Wind Energy Explained*, 2nd ed., Wiley 2009, sec. 2.3.3);
2. air density at hub height from the surface temperature and pressure:
   the temperature falls with the standard-atmosphere lapse rate
   0.0065 K/m, pressure follows the barometric formula of the same
   atmosphere (ISO 2533:1975), density by the ideal-gas law for dry air
   (humidity is neglected: it lowers density by under 1 %);
3. density correction of the wind speed, IEC 61400-12-1:2017 (sec. 9.1.5,
   for turbines with active power control, as both shipped turbines are):
   ``v_eq = v (rho / 1.225)^(1/3)``;
4. power by linear interpolation of the turbine's curve (at 1.225 kg/m3);
   zero below the first tabulated speed (cut-in) and zero when the actual
   hub-height speed exceeds the last one (cut-out: the controller reacts to
   the wind it measures, whatever the density);
5. times ``1 - array_loss_frac`` (wake losses) and ``availability_frac``.

Per-turbine outages (optional, ``outage_mttr_h``): instead of the
availability factor, each turbine alternates between up and down periods of
exponential length (mean time to repair ``outage_mttr_h``; mean time to
failure chosen so that the long-run share of time up is ``availability_frac``),
drawn once at construction from the fleet's random stream.  A step's power is
zero while its turbine is down at the step's start.  The dispatcher knows which
turbines are down when it plans and expects them back with the two-state
Markov chain's transition probabilities.

Steady power curve on 15-minute mean wind: turbulence and the cut-out
hysteresis are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from vpp.assets import register
from vpp.assets.base import FleetContext, FleetParams, WeatherDrivenSource
from vpp.exogenous.series import Exogenous
from vpp.flex import CurtailableSource, HorizonGrid
from vpp.params import ranged, sample

__all__ = [
    "TURBINES",
    "TurbineType",
    "WindParams",
    "WindFleet",
    "RHO_STD_KG_M3",
    "power_curve",
    "hub_wind_speed_power_law",
    "hub_wind_speed_log_law",
    "air_density_at_height",
    "density_corrected_speed",
    "turbine_power_kw",
]

RHO_STD_KG_M3 = 1.225
"""Standard air density of power curves (IEC 61400-12-1). [kg/m3]"""

R_DRY_AIR_J_KG_K = 287.05
"""Specific gas constant of dry air (ISO 2533). [J/(kg K)]"""

LAPSE_RATE_K_M = 0.0065
"""Temperature lapse rate of the standard atmosphere (ISO 2533). [K/m]"""

GRAVITY_M_S2 = 9.80665
"""Standard gravity. [m/s2]"""



@dataclass(frozen=True)
class TurbineType:
    """A shipped reference turbine (see ``assets/data/README.md``).

    Parameters
    ----------
    rated_kw : float
        Nameplate rating. [kW]
    hub_height_m : float
        Reference hub height. [m]
    siting : {"offshore", "onshore"}
        Where it was designed for; selects the default shear exponent.
    """

    rated_kw: float
    hub_height_m: float
    siting: Literal["offshore", "onshore"]


TURBINES: dict[str, TurbineType] = {
    # Jonkman et al. 2009, NREL/TP-500-38060
    "nrel_5mw_offshore": TurbineType(5000.0, 90.0, "offshore"),
    # Bortolotti et al. 2019, NREL/TP-5000-73492
    "iea_3.4mw_onshore": TurbineType(3370.0, 110.0, "onshore"),
}

_DEFAULT_SHEAR = {"offshore": 0.10, "onshore": 0.14}
# 0.10 over open sea and 0.14 (about 1/7) over open land: typical neutral-
# stability values (Hsu, Meindl & Gilhousen 1994, J. Appl. Meteor. 33,
# doi:10.1175/1520-0450(1994)033<0757:DTPLWP>2.0.CO;2, give 0.11 at sea).


def power_curve(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The shipped power curve *name*: wind speeds [m/s] and power [kW] at 1.225 kg/m3."""
    if name not in TURBINES:
        raise KeyError(f"unknown turbine {name!r} (known: {', '.join(TURBINES)})")
    text = (
        resources.files("vpp.assets").joinpath(f"data/power_curves/{name}.csv").read_text("utf-8")
    )
    table = np.loadtxt(text.splitlines(), delimiter=",", skiprows=1, ndmin=2)
    v, p = table[:, 0], table[:, 1]
    if np.any(np.diff(v) <= 0):
        raise ValueError(f"power curve {name!r}: wind speeds must increase")
    return v, p


def hub_wind_speed_power_law(v_ref_m_s, h_ref_m, hub_height_m, alpha):
    """Wind speed at hub height by the power law.

    Parameters
    ----------
    v_ref_m_s : numeric
        Wind speed at the reference height. [m/s]
    h_ref_m, hub_height_m : numeric
        Reference and hub heights above ground. [m]
    alpha : numeric
        Shear exponent. [-]

    Returns
    -------
    numeric
        ``v_ref (hub / h_ref)^alpha``. [m/s]
    """
    return np.asarray(v_ref_m_s, dtype=float) * (np.asarray(hub_height_m) / h_ref_m) ** alpha


def hub_wind_speed_log_law(v_ref_m_s, h_ref_m, hub_height_m, roughness_length_m):
    """Wind speed at hub height by the logarithmic (neutral surface-layer) profile.

    Parameters
    ----------
    v_ref_m_s : numeric
        Wind speed at the reference height. [m/s]
    h_ref_m, hub_height_m : numeric
        Reference and hub heights above ground (> roughness length). [m]
    roughness_length_m : float
        Surface roughness length z0 (0.0002 open sea, 0.03 open land). [m]

    Returns
    -------
    numeric
        ``v_ref ln(hub / z0) / ln(h_ref / z0)``. [m/s]
    """
    z0 = roughness_length_m
    ratio = np.log(np.asarray(hub_height_m) / z0) / np.log(h_ref_m / z0)
    return np.asarray(v_ref_m_s, dtype=float) * ratio


def air_density_at_height(temp_air_c, pressure_pa, height_m):
    """Dry-air density at *height_m* above the surface (ISO 2533 lapse, ideal gas).

    ``T = T_s - 0.0065 h``, ``p = p_s (T / T_s)^(g / (R L))``,
    ``rho = p / (R T)``; the 2 m air temperature stands in for the surface
    temperature ``T_s`` (a 0.013 K difference).

    Parameters
    ----------
    temp_air_c : numeric
        Air temperature near the surface. [degC]
    pressure_pa : numeric
        Surface air pressure. [Pa]
    height_m : numeric
        Height above the surface. [m]

    Returns
    -------
    numeric
        Air density. [kg/m3]
    """
    t_surface_k = np.asarray(temp_air_c, dtype=float) + 273.15
    t_k = t_surface_k - LAPSE_RATE_K_M * np.asarray(height_m)
    exponent = GRAVITY_M_S2 / (R_DRY_AIR_J_KG_K * LAPSE_RATE_K_M)
    p_pa = np.asarray(pressure_pa, dtype=float) * (t_k / t_surface_k) ** exponent
    return p_pa / (R_DRY_AIR_J_KG_K * t_k)


def density_corrected_speed(v_m_s, rho_kg_m3):
    """IEC 61400-12-1 equivalent wind speed ``v (rho / 1.225)^(1/3)``. [m/s]"""
    return np.asarray(v_m_s, dtype=float) * (np.asarray(rho_kg_m3) / RHO_STD_KG_M3) ** (1.0 / 3.0)


def turbine_power_kw(v_hub_m_s, rho_kg_m3, curve_v_m_s, curve_p_kw):
    """Electrical power of one turbine from its power curve.

    Parameters
    ----------
    v_hub_m_s : numeric
        Wind speed at hub height. [m/s]
    rho_kg_m3 : numeric
        Air density at hub height. [kg/m3]
    curve_v_m_s, curve_p_kw : ndarray
        Power curve at 1.225 kg/m3: increasing wind speeds [m/s] and power [kW].

    Returns
    -------
    ndarray
        Power, generator sign (>= 0): the curve at the density-corrected
        speed, zero below the first tabulated speed and zero when the
        actual speed exceeds the last one. [kW]
    """
    v = np.asarray(v_hub_m_s, dtype=float)
    v_eq = density_corrected_speed(v, rho_kg_m3)
    p = np.interp(v_eq, curve_v_m_s, curve_p_kw)  # clamps to the last value above the table
    running = (v_eq >= curve_v_m_s[0]) & (v <= curve_v_m_s[-1])
    return np.where(running, np.maximum(p, 0.0), 0.0)


class WindParams(FleetParams):
    """Parameters of a wind fleet; one asset is one turbine."""

    turbine: Literal["nrel_5mw_offshore", "iea_3.4mw_onshore"] = "nrel_5mw_offshore"
    """Shipped power curve (``assets/data/power_curves``)."""
    hub_height_m: ranged(gt=0, le=300) | None = None
    """Hub height above ground; default: the reference turbine's. [m]"""
    wind_regime: str = "offshore"
    """Wind regime of the Exogenous that drives the fleet."""
    shear: Literal["power_law", "log_law"] = "power_law"
    """Vertical extrapolation from the regime's height to the hub."""
    shear_exponent: float | None = Field(None, ge=0, le=1)
    """Power-law exponent; default 0.10 for an offshore turbine, 0.14 onshore. [-]"""
    roughness_length_m: float = Field(0.0002, gt=0, le=2)
    """Log-law roughness length z0 (0.0002 open sea; 0.03 open farmland). [m]"""
    availability_frac: float = Field(0.97, gt=0, le=1)
    """Share of time a turbine can run (technical availability). [-]"""
    array_loss_frac: float = Field(0.10, ge=0, lt=1)
    """Wake (array) losses of the farm (assumption, typical offshore value). [-]"""
    outage_mttr_h: float | None = Field(None, gt=0)
    """Mean time to repair of random per-turbine outages; ``None``: no outages,
    availability applied as a factor. [h]"""

    @model_validator(mode="after")
    def _outage_needs_downtime(self):
        if self.outage_mttr_h is not None and self.availability_frac >= 1:
            raise ValueError("outage_mttr_h needs availability_frac < 1")
        return self


@register
class WindFleet(WeatherDrivenSource):
    """N wind turbines of one type; curtailable green sources.

    Available power is a pure function of weather (and of the outage
    schedule drawn at construction), computed for all turbines over chunks of
    steps (up to a day) and cached; the engine's per-step calls only index it.
    """

    type_name = "wind"
    Params = WindParams

    def __init__(self, ctx: FleetContext, params: WindParams):
        super().__init__(ctx, params)
        n = self.n_assets
        self.turbine = TURBINES[params.turbine]
        self.curve_v_m_s, self.curve_p_kw = power_curve(params.turbine)
        hub = self.turbine.hub_height_m if params.hub_height_m is None else params.hub_height_m
        self.hub_height_m = sample(hub, self.rng, n)
        self.shear_exponent = (
            _DEFAULT_SHEAR[self.turbine.siting]
            if params.shear_exponent is None
            else params.shear_exponent
        )
        regime = params.wind_regime
        if regime not in self.exo.wind_speed_m_s:
            raise ValueError(
                f"fleet {self.name!r}: wind_regime {regime!r} is not in the weather "
                f"(regimes: {', '.join(sorted(self.exo.wind_speed_m_s)) or 'none'})"
            )
        if params.shear == "log_law":
            low = min(self.exo.wind_ref_height_m[regime], float(self.hub_height_m.min()))
            if not params.roughness_length_m < low:
                raise ValueError(
                    f"fleet {self.name!r}: roughness_length_m ({params.roughness_length_m}) "
                    f"must be below the reference and hub heights ({low} m)"
                )
        self._outages = self._draw_outages() if params.outage_mttr_h is not None else None

    # -- physics ---------------------------------------------------------
    def _per_turbine_kw(self, exo: Exogenous, k0: int, n: int) -> np.ndarray:
        """Power after wake losses, before availability, steps ``k0 .. k0+n-1``. [kW]"""
        s = slice(k0, k0 + n)
        p = self.params
        v_ref = exo.wind_speed_m_s[p.wind_regime][None, s]
        h_ref = exo.wind_ref_height_m[p.wind_regime]
        hub = self.hub_height_m[:, None]
        if p.shear == "power_law":
            v_hub = hub_wind_speed_power_law(v_ref, h_ref, hub, self.shear_exponent)
        else:
            v_hub = hub_wind_speed_log_law(v_ref, h_ref, hub, p.roughness_length_m)
        rho = air_density_at_height(exo.temp_air_c[None, s], exo.pressure_pa[None, s], hub)
        p_kw = turbine_power_kw(v_hub, rho, self.curve_v_m_s, self.curve_p_kw)
        return p_kw * (1.0 - p.array_loss_frac)

    def _draw_outages(self) -> list[np.ndarray]:
        """Down intervals ``[start, end)`` in steps, per turbine (alternating renewal process)."""
        a = self.params.availability_frac
        mttr_steps = self.params.outage_mttr_h / self.dt_h
        mttf_steps = mttr_steps * a / (1.0 - a)
        horizon = float(len(self.exo))
        n = self.n_assets
        up_first = self.rng.random(n) < a  # start in the stationary distribution
        out = []
        for i in range(n):
            t, up, down = 0.0, bool(up_first[i]), []
            while t < horizon:
                # residual life of an exponential is exponential: same draws at t = 0
                d = self.rng.exponential(mttf_steps if up else mttr_steps)
                if not up:
                    down.append((t, t + d))
                t, up = t + d, not up
            # down at step k if down at the step's start t = k
            iv = np.array([(np.ceil(s), np.ceil(e)) for s, e in down], dtype=np.int64).reshape(
                -1, 2
            )
            out.append(iv[iv[:, 1] > iv[:, 0]])
        return out

    def _up_mask(self, k0: int, n: int) -> np.ndarray:
        """Whether each turbine is up at each step ``k0 .. k0+n-1``."""
        up = np.ones((self.n_assets, n), dtype=bool)
        for i, iv in enumerate(self._outages):
            for s, e in iv[(iv[:, 1] > k0) & (iv[:, 0] < k0 + n)]:
                up[i, max(s, k0) - k0 : min(e, k0 + n) - k0] = False
        return up

    def _availability(self, k0: int, n: int) -> np.ndarray | float:
        if self._outages is None:
            return self.params.availability_frac
        return self._up_mask(k0, n)

    def _available_chunk_kw(self, k0: int, n: int) -> np.ndarray:
        """Power available per turbine, steps ``k0 .. k0+n-1``. [kW]"""
        return self._per_turbine_kw(self.exo, k0, n) * self._availability(k0, n)

    # -- flexibility -----------------------------------------------------
    def _expected_availability(self, grid: HorizonGrid) -> np.ndarray | float:
        """Probability each turbine is up over the horizon, given its state at ``grid.k0``.

        Two-state Markov chain with long-run availability A and time constant
        ``tau = A * MTTR``: ``P(up | up) = A + (1 - A) e^(-t/tau)``,
        ``P(up | down) = A (1 - e^(-t/tau))``.
        """
        if self._outages is None:
            return self.params.availability_frac
        a = self.params.availability_frac
        up_now = self._up_mask(min(grid.k0, len(self.exo) - 1), 1)
        t_h = np.arange(grid.n_steps) * self.dt_h
        decay = np.exp(-t_h / (a * self.params.outage_mttr_h))[None, :]
        return np.where(up_now, a + (1 - a) * decay, a * (1 - decay))

    def flexibility(self, grid: HorizonGrid, forecast: Exogenous) -> list[CurtailableSource]:
        """``0 <= p <= forecast available power``, block means per turbine. [kW]"""
        p_kw = self._per_turbine_kw(forecast, 0, grid.n_steps) * self._expected_availability(grid)
        return [CurtailableSource(self.name, self.node, grid.mean(p_kw))]

    # -- records -----------------------------------------------------------
    def info(self) -> dict[str, float]:
        return {"p_rated_kw": self.n_assets * self.turbine.rated_kw}
