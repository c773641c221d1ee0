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
   for turbines with active power control, as all shipped turbines are):
   ``v_eq = v (rho / 1.225)^(1/3)``;
4. power by linear interpolation of the turbine's curve (at 1.225 kg/m3);
   zero below the first tabulated speed (cut-in) and zero when the actual
   hub-height speed exceeds the last one (cut-out: the controller reacts to
   the wind it measures, whatever the density);
5. plant losses by category, each a parameter, combined as
   ``1 - prod(1 - l_i)``: wake (``array_loss_frac``), electrical, turbine
   performance and environmental -- the loss categories of energy-yield
   assessment (Brower 2012; Clifton et al. 2016), which are also
   the reductions of Chinese wind-farm design (GB 51096-2015, 3.3.4) --
   and the availability ``availability_frac``.

Shipped turbines (``assets/data/power_curves``, sources in the README
there): the NREL 5 MW and IEA 15 MW offshore reference turbines, the IEA
3.4 MW onshore reference turbine and NREL's 2.3 MW market-average onshore
turbine, and ``generic_3mw_offshore``: the NREL 5 MW's power coefficient on
a 90 m rotor rated 3 MW (:func:`rescaled_power_curve`), the size and specific
power (472 W/m2) of the Sinovel SL3000/90 turbines of the Donghai Bridge
offshore farm, for which no open power curve exists.

Calibration against Donghai Bridge (34 Sinovel SL3000/90, 102 MW, designed
267 GWh/yr = capacity factor 29.9 %, 8.4 m/s mean at the 90 m hub;
docs/SOURCES.md).  On the default offshore regime (that 8.4 m/s), averaged
over 20 synthetic years: gross capacity factor 45 % with the NREL 5 MW
(401 W/m2), 42 % with the SL3000/90-sized ``generic_3mw_offshore``
(472 W/m2): a rotor small for its rating explains 4 points.  The default
losses (17 % with the availability) leave 38 % and 34 %.  Chinese design
yields carry larger reductions (GB 51096-2015: wake, control and
turbulence, blade soiling, power-curve guarantee, climate, station
consumption and line losses, availability; about 26 % together): with
those, ``generic_3mw_offshore`` gives 31 % (28-33 % from year to year), the
Donghai Bridge-like farm of ``scenarios/wind.toml``.  The Weibull shape
matters little: k = 2.0 instead of the regime's 2.2 lowers the gross yield
by 1.5 %.  (Measured operation was lower still: about 1.3 TWh from July
2010 to April 2016, a capacity factor near 25 %; secondary.)

Per-turbine outages (optional, ``outage_mttr_h``): instead of the
availability factor, each turbine alternates between up and down periods of
exponential length (mean time to repair ``outage_mttr_h``; mean time to
failure chosen so that the long-run share of time up is ``availability_frac``),
drawn once at construction from the fleet's random stream.  A step's power is
zero while its turbine is down at the step's start.  The dispatcher knows which
turbines are down when it plans and expects them back with the two-state
Markov chain's transition probabilities.

Steady power curve on 15-minute mean wind: turbulence and the cut-out
hysteresis are not modelled (they are part of the turbine-performance and
environmental losses).

References
----------
Jonkman, J., Butterfield, S., Musial, W., Scott, G. (2009). Definition of a
5-MW Reference Wind Turbine for Offshore System Development.
NREL/TP-500-38060. :doi:`10.2172/947422`

Gaertner, E. et al. (2020). Definition of the IEA 15-Megawatt Offshore
Reference Wind Turbine. NREL/TP-5000-75698.

Bortolotti, P. et al. (2019). IEA Wind TCP Task 37: Systems Engineering in
Wind Energy - WP2.1 Reference Wind Turbines. NREL/TP-5000-73492.
:doi:`10.2172/1529216`

Stehly, T., Beiter, P., Heimiller, D., Scott, G. (2018). 2017 Cost of Wind
Energy Review. NREL/TP-6A20-72167.

Brower, M. (2012). Wind Resource Assessment: A Practical Guide to Developing
a Wind Project. Wiley (chapter on plant losses and energy production).

Clifton, A. et al. (2016). Wind Plant Preconstruction Energy Estimates:
Current Practice and Opportunities. NREL/TP-5000-64735.

GB 51096-2015. Code for design of wind farm (风力发电场设计规范), sec. 3.3.

Manwell, J. F., McGowan, J. G., Rogers, A. L. (2009). Wind Energy Explained,
2nd ed. Wiley. :doi:`10.1002/9781119994367`
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator, model_validator

from vpp.assets import register
from vpp.assets.base import FleetContext, FleetParams, WeatherDrivenSource, resolve_data_path
from vpp.errors import FieldError
from vpp.exogenous.series import Exogenous
from vpp.flex import CurtailableSource, HorizonGrid
from vpp.outages import OutageDraw
from vpp.params import ranged, sample

__all__ = [
    "TURBINES",
    "TurbineType",
    "WIND_LOSS_FIELDS",
    "rescaled_power_curve",
    "combined_loss_frac",
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
    """A shipped turbine (see ``assets/data/README.md``).

    Parameters
    ----------
    rated_kw : float
        Nameplate rating. [kW]
    hub_height_m : float
        Reference hub height. [m]
    siting : {"offshore", "onshore"}
        Where it was designed for; selects the default shear exponent.
    rotor_diameter_m : float
        Rotor diameter. [m]
    scaled_from : str or None
        ``None``: the curve is the CSV file of the same name.  Otherwise the
        turbine whose power coefficient it keeps on its own rotor and rating
        (:func:`rescaled_power_curve`).
    """

    rated_kw: float
    hub_height_m: float
    siting: Literal["offshore", "onshore"]
    rotor_diameter_m: float
    scaled_from: str | None = None

    @property
    def specific_power_w_m2(self) -> float:
        """Rating over swept area. [W/m2]"""
        return 1000.0 * self.rated_kw / (np.pi * self.rotor_diameter_m**2 / 4.0)


TURBINES: dict[str, TurbineType] = {
    # Jonkman et al. 2009, NREL/TP-500-38060
    "nrel_5mw_offshore": TurbineType(5000.0, 90.0, "offshore", 126.0),
    # Gaertner et al. 2020, NREL/TP-5000-75698
    "iea_15mw_offshore": TurbineType(15000.0, 150.0, "offshore", 240.0),
    # SL3000/90 size (Donghai Bridge) with the NREL 5 MW's power coefficient
    "generic_3mw_offshore": TurbineType(3000.0, 90.0, "offshore", 90.0, "nrel_5mw_offshore"),
    # Bortolotti et al. 2019, NREL/TP-5000-73492
    "iea_3.4mw_onshore": TurbineType(3370.0, 110.0, "onshore", 130.0),
    # Stehly et al. 2018, NREL/TP-6A20-72167 (rating 2,320 kW in the table)
    "nrel_2.3mw_onshore": TurbineType(2320.0, 86.0, "onshore", 113.0),
}

WIND_LOSS_FIELDS = (
    "array_loss_frac",
    "electrical_loss_frac",
    "turbine_performance_loss_frac",
    "environmental_loss_frac",
)
"""Plant loss categories of :class:`WindParams` besides availability."""

_DEFAULT_SHEAR = {"offshore": 0.10, "onshore": 0.14}
# 0.10 over open sea and 0.14 (about 1/7) over open land: typical neutral-
# stability values (Hsu, Meindl & Gilhousen 1994, J. Appl. Meteor. 33,
# doi:10.1175/1520-0450(1994)033<0757:DTPLWP>2.0.CO;2, give 0.11 at sea).


def power_curve(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The shipped power curve *name*: wind speeds [m/s] and power [kW] at 1.225 kg/m3."""
    if name not in TURBINES:
        raise KeyError(f"unknown turbine {name!r} (known: {', '.join(TURBINES)})")
    turbine = TURBINES[name]
    if turbine.scaled_from is not None:
        base = TURBINES[turbine.scaled_from]
        v, p = power_curve(turbine.scaled_from)
        return rescaled_power_curve(v, p, base.rotor_diameter_m, turbine.rotor_diameter_m, turbine.rated_kw)
    text = (
        resources.files("vpp.assets").joinpath(f"data/power_curves/{name}.csv").read_text("utf-8")
    )
    table = np.loadtxt(text.splitlines(), delimiter=",", skiprows=1, ndmin=2)
    v, p = table[:, 0], table[:, 1]
    if np.any(np.diff(v) <= 0):
        raise ValueError(f"power curve {name!r}: wind speeds must increase")
    return v, p


def read_power_curve_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """A power curve from a CSV with columns ``wind_speed_m_s`` and ``power_kw``
    (increasing speeds, power >= 0); one :class:`ScenarioError` line for a bad file."""
    from vpp.errors import ScenarioError

    try:
        frame = pd.read_csv(path, comment="#")
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise ScenarioError(str(path), "power_curve_csv", f"cannot read the power curve ({e})") from None
    missing = [c for c in ("wind_speed_m_s", "power_kw") if c not in frame.columns]
    if missing:
        raise ScenarioError(str(path), missing[0], f"missing column (the file has: {', '.join(frame.columns)})")
    v = pd.to_numeric(frame["wind_speed_m_s"], errors="coerce").to_numpy(float)
    p = pd.to_numeric(frame["power_kw"], errors="coerce").to_numpy(float)
    if len(v) < 2 or not (np.isfinite(v).all() and np.isfinite(p).all()):
        raise ScenarioError(str(path), "power_kw", "needs at least two rows of finite numbers")
    if np.any(np.diff(v) <= 0) or v[0] < 0:
        raise ScenarioError(str(path), "wind_speed_m_s", "wind speeds must be >= 0 and increase row by row")
    if (p < 0).any():
        raise ScenarioError(str(path), "power_kw", f"negative power {p[p < 0][0]:g} kW")
    return v, p


def rescaled_power_curve(v_m_s, p_kw, rotor_ref_m, rotor_m, rated_kw):
    """A reference turbine's power coefficient on another rotor and rating.

    Below the reference's rated power, the power coefficient
    ``Cp(v) = P(v) / (rho A v^3 / 2)`` of the reference is kept, so power
    scales with the swept area; above the reference's last tabulated speed
    below rating, ``Cp`` is held at its value there (the region-2 value: the
    cubic law continues); power is capped at ``rated_kw``.  The knee (rated
    wind speed) is added to the table.  Cut-in and cut-out are the
    reference's.  ``P = Cp rho A v^3 / 2`` with the reference's ``Cp``
    (Manwell et al. 2009, ch. 3): one set of aerodynamics at another
    specific power.

    Parameters
    ----------
    v_m_s, p_kw : ndarray
        Reference power curve at 1.225 kg/m3, increasing speeds. [m/s], [kW]
    rotor_ref_m, rotor_m : float
        Rotor diameters of the reference and of the new turbine. [m]
    rated_kw : float
        Rating of the new turbine. [kW]

    Returns
    -------
    v_m_s, p_kw : ndarray
        The new power curve. [m/s], [kW]
    """
    v = np.asarray(v_m_s, dtype=float)
    p = np.asarray(p_kw, dtype=float)
    area_ratio = (rotor_m / rotor_ref_m) ** 2
    below = np.flatnonzero(p < 0.99 * p.max())
    last = below[below < np.argmax(p >= 0.99 * p.max())].max()  # last point of region 2
    free = area_ratio * np.where(v <= v[last], p, p[last] * (v / v[last]) ** 3)
    # the knee: on the cubic branch in closed form, else on a straight segment of the table
    if free[last] < rated_kw:
        knee = v[last] * (rated_kw / free[last]) ** (1.0 / 3.0)
    else:
        j = int(np.argmax(free >= rated_kw))
        knee = np.interp(rated_kw, free[j - 1 : j + 1], v[j - 1 : j + 1])
    v_new = np.union1d(v, [knee]) if v[0] < knee < v[-1] else v
    free_new = area_ratio * np.where(
        v_new <= v[last], np.interp(v_new, v, p), p[last] * (v_new / v[last]) ** 3
    )
    return v_new, np.minimum(free_new, rated_kw)


def combined_loss_frac(*losses_frac):
    """Total plant loss from independent loss categories: ``1 - prod_i (1 - l_i)``. [-]"""
    kept = 1.0
    for loss in losses_frac:
        kept = kept * (1.0 - np.asarray(loss, dtype=float))
    return 1.0 - kept


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


def curve_density_exponent(curve_v_m_s):
    """The exponent of the density correction at each power-curve speed in
    windpowerlib's ``power_curve_density_correction`` (Svenningsen 2010, *Power Curve
    Air Density Correction and Other Power Curve Options in WindPRO*): 1/3 up to
    7.5 m/s, rising linearly to 2/3 at 12.5 m/s, 2/3 above. [-]"""
    return np.interp(np.asarray(curve_v_m_s, dtype=float), [7.5, 12.5], [1.0 / 3.0, 2.0 / 3.0])


def turbine_power_kw_varying_exponent(v_hub_m_s, rho_kg_m3, curve_v_m_s, curve_p_kw):
    """Power from the curve moved to the site's density with the exponent of
    :func:`curve_density_exponent`: the curve's speeds become
    ``v_std (1.225 / rho)^x(v_std)``, the power is read at the actual speed, and is
    zero outside the moved curve -- windpowerlib's definition. [kW]"""
    v = np.asarray(v_hub_m_s, dtype=float)
    rho = np.broadcast_to(np.asarray(rho_kg_m3, dtype=float), v.shape)
    cv, cp = np.asarray(curve_v_m_s, dtype=float), np.asarray(curve_p_kw, dtype=float)
    moved = (RHO_STD_KG_M3 / rho)[..., None] ** curve_density_exponent(cv) * cv        # (..., L)
    j = (moved <= v[..., None]).sum(axis=-1)                                          # segments left of v
    inside = (j >= 1) & (j < cv.size)
    lo = np.clip(j - 1, 0, cv.size - 2)
    v0 = np.take_along_axis(moved, lo[..., None], -1)[..., 0]
    v1 = np.take_along_axis(moved, lo[..., None] + 1, -1)[..., 0]
    p = cp[lo] + (v - v0) / (v1 - v0) * (cp[lo + 1] - cp[lo])
    at_end = (j == cv.size) & (v == moved[..., -1])                                   # exactly the last speed
    return np.where(inside, np.maximum(p, 0.0), np.where(at_end, cp[-1], 0.0))


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
    """Parameters of a wind fleet; one asset is one turbine.

    Plant losses are itemised by category (Brower 2012; Clifton et al.
    2016; GB 51096-2015, 3.3.4) and combined as ``1 - prod(1 - l_i)``;
    the defaults (assumptions, typical values) total 17 % with the
    availability.
    """

    turbine: Literal[
        "nrel_5mw_offshore",
        "iea_15mw_offshore",
        "generic_3mw_offshore",
        "iea_3.4mw_onshore",
        "nrel_2.3mw_onshore",
    ] = "nrel_5mw_offshore"
    """Shipped power curve (``assets/data/power_curves``; see :data:`TURBINES`)."""
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
    """Share of time a turbine can run (technical availability; assumption,
    typical of onshore farms; offshore farms with difficult access reach
    0.90-0.95; Donghai Bridge reported above 0.95). [-]"""
    array_loss_frac: float = Field(0.10, ge=0, lt=1)
    """Wake (array) losses of the farm (assumption, typical offshore value). [-]"""
    electrical_loss_frac: float = Field(0.02, ge=0, lt=1)
    """Collection grid, transformers, export cable and station consumption up
    to the point of connection (assumption, typical 2-3 %). [-]"""
    turbine_performance_loss_frac: float = Field(0.02, ge=0, lt=1)
    """Turbine below its reference power curve: turbulence, yaw error,
    high-wind hysteresis, blade wear (assumption, typical 1-4 %). [-]"""
    environmental_loss_frac: float = Field(0.01, ge=0, lt=1)
    """Shutdowns in typhoons, lightning, extreme temperatures; icing
    (assumption, typical 1-3 %). [-]"""
    density_correction: Literal["iec", "varying_exponent"] = "iec"
    """Air-density correction of the power curve: ``"iec"``, IEC 61400-12-1 (exponent
    1/3 on the speed); ``"varying_exponent"``, the exponent rising from 1/3 to 2/3
    between 7.5 and 12.5 m/s as windpowerlib does (Svenningsen 2010)."""
    power_curve_csv: str | None = None
    """A power curve of your own: a CSV with columns ``wind_speed_m_s`` and
    ``power_kw`` (at 1.225 kg/m3, increasing speeds), relative to the scenario;
    replaces the shipped curve of ``turbine`` (whose hub height stays the default). [-]"""
    outage_mttr_h: float | None = Field(None, ge=0.25, le=8760)
    """Mean time to repair of random per-turbine outages; ``None``: no outages,
    availability applied as a factor.  At least 15 minutes: a stop shorter than
    that (a remote reset) is no outage a dispatcher plans around, and each
    outage is drawn one by one (1e-6 h once drew billions of them). [h]"""

    @field_validator("power_curve_csv")
    @classmethod
    def _curve_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = resolve_data_path(value, (info.context or {}).get("base_dir"))
        read_power_curve_csv(path)                     # every row checked now (ScenarioError)
        return str(path)

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
    state_columns = ("p_available_kw", "v_hub_m_s")

    def __init__(self, ctx: FleetContext, params: WindParams):
        super().__init__(ctx, params)
        n = self.n_assets
        self.turbine = TURBINES[params.turbine]
        self.curve_v_m_s, self.curve_p_kw = (power_curve(params.turbine) if params.power_curve_csv is None
                                             else read_power_curve_csv(params.power_curve_csv))
        self._v_hub_k0, self._v_hub = -1, np.empty((n, 0))
        self.loss_frac = float(combined_loss_frac(*(getattr(params, f) for f in WIND_LOSS_FIELDS)))
        hub = self.turbine.hub_height_m if params.hub_height_m is None else params.hub_height_m
        self.hub_height_m = sample(hub, self.rng, n)
        self.shear_exponent = (
            _DEFAULT_SHEAR[self.turbine.siting]
            if params.shear_exponent is None
            else params.shear_exponent
        )
        regime = params.wind_regime
        if regime not in self.exo.wind_speed_m_s:
            raise FieldError(
                ("wind_regime",),
                f"{regime!r} is not a wind regime of the weather "
                f"(weather.wind_regimes: {', '.join(sorted(self.exo.wind_speed_m_s)) or 'none'})",
            )
        if params.shear == "log_law":
            low = min(self.exo.wind_ref_height_m[regime], float(self.hub_height_m.min()))
            if not params.roughness_length_m < low:
                raise FieldError(
                    ("roughness_length_m",),
                    f"{params.roughness_length_m:g} m must be below the regime's reference height "
                    f"and the hub height ({low:g} m)",
                )
        self._outages = self._draw_outages() if params.outage_mttr_h is not None else None

    # -- physics ---------------------------------------------------------
    def _per_turbine_kw(self, exo: Exogenous, k0: int, n: int) -> np.ndarray:
        """Power after plant losses, before availability, steps ``k0 .. k0+n-1``. [kW]"""
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
        if exo is self.exo:
            self._v_hub_k0, self._v_hub = k0, v_hub                 # for the records (state)
        power = turbine_power_kw if p.density_correction == "iec" else turbine_power_kw_varying_exponent
        p_kw = power(v_hub, rho, self.curve_v_m_s, self.curve_p_kw)
        return p_kw * (1.0 - self.loss_frac)

    def _draw_outages(self) -> OutageDraw:
        """Down periods per turbine over the padded timeline (:class:`vpp.outages.OutageDraw`),
        mean time to failure set so that the long-run share up is ``availability_frac``."""
        a = self.params.availability_frac
        mttr_steps = self.params.outage_mttr_h / self.dt_h
        mttf_steps = mttr_steps * a / (1.0 - a)
        return OutageDraw(self.n_assets, mttf_steps, mttr_steps, len(self.exo), self.rng, availability=a)

    def _up_mask(self, k0: int, n: int) -> np.ndarray:
        """Whether each turbine is up at each step ``k0 .. k0+n-1``."""
        return self._outages.up_mask(k0, n)

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
        """``0 <= p <= forecast available power``, block means per turbine. [kW]

        Outages are forecast by the expected availability given each turbine's
        state now, or, with a perfect forecast (``forecast.perfect``), by the
        outages that will happen.
        """
        if forecast.perfect:
            up = self._availability(grid.k0, grid.n_steps)
        else:
            up = self._expected_availability(grid)
        p_kw = self._per_turbine_kw(forecast, 0, grid.n_steps) * up
        return [CurtailableSource(self.name, self.node, grid.mean(p_kw))]

    # -- records -----------------------------------------------------------
    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        self._k = k
        return super()._step(k, setpoint_kw)

    def state(self) -> dict[str, float]:
        """Available power, and the mean hub-height wind speed over the turbines. [kW, m/s]"""
        j = getattr(self, "_k", 0) - self._v_hub_k0
        v = float(self._v_hub[:, j].mean()) if 0 <= j < self._v_hub.shape[1] and self._v_hub.size else float("nan")
        return {**super().state(), "v_hub_m_s": v}

    def info(self) -> dict[str, float]:
        rated = self.turbine.rated_kw if self.params.power_curve_csv is None else float(np.max(self.curve_p_kw))
        return {"p_rated_kw": self.n_assets * rated}
