"""Photovoltaic systems: a fleet of fixed-tilt PV plants with PVWatts physics.

The chain follows pvlib's ``ModelChain`` configured as PVWatts v5 (Dobos 2014)
with a Hay-Davies sky and the SAPM cell temperature, one vectorised call for
all assets and many steps:

1. plane-of-array irradiance: :func:`pvlib.irradiance.get_total_irradiance`,
   Hay-Davies sky diffuse (Hay & Davies 1980) with ``dni_extra``, isotropic
   ground reflection with the asset's albedo;
2. incidence-angle losses on the beam component: the physical (Fresnel and
   absorption) model of De Soto et al. (2006), :func:`pvlib.iam.physical`,
   which is the cover model PVWatts v5 uses; diffuse light is not modified
   (``FD = 1``), as in ModelChain;
3. cell temperature: :func:`pvlib.temperature.sapm_cell` (King et al. 2004)
   from the plane-of-array global irradiance, air temperature and the wind
   speed at 10 m;
4. DC power: :func:`pvlib.pvsystem.pvwatts_dc`;
5. system losses, the ten loss categories of PVWatts v5 (Dobos 2014,
   "System Losses": soiling, shading, snow, mismatch, wiring, connections,
   light-induced degradation, nameplate rating, age, availability), each a
   parameter, combined as PVWatts does, ``1 - prod(1 - l_i)``
   (:func:`combined_losses_frac`, what :func:`pvlib.pvsystem.pvwatts_losses`
   computes in percent); the defaults are PVWatts' and total 14.08 %.  The
   combined fraction is applied to DC power, as ModelChain does;
6. inverter: :func:`pvlib.inverter.pvwatts` with its part-load efficiency and
   clipping at the AC rating ``p_dc_kwp / dc_ac_ratio``.

Solar geometry comes from the :class:`~vpp.exogenous.series.Exogenous`
(interval midpoints, computed once per site); the apparent (refracted) zenith
is used for transposition and incidence, as ModelChain does.

Wind for cell cooling: the Exogenous gives each wind regime at its reference
height (about 90 m); SAPM expects the wind at 10 m, so the regime's speed is
brought down with a 1/7 power law (Peterson & Hennessey 1978,
:doi:`10.1175/1520-0450(1978)017<0390:OTUOPL>2.0.CO;2`).

References
----------
Dobos, A. P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
:doi:`10.2172/1158421`

Hay, J. E., Davies, J. A. (1980). Calculations of the solar radiation
incident on an inclined surface. Proc. First Canadian Solar Radiation Data
Workshop, 59.

De Soto, W., Klein, S. A., Beckman, W. A. (2006). Improvement and validation
of a model for photovoltaic array performance. Solar Energy 80(1), 78-88.
:doi:`10.1016/j.solener.2005.06.010`

King, D. L., Boyson, W. E., Kratochvil, J. A. (2004). Photovoltaic Array
Performance Model. SAND2004-3535. :doi:`10.2172/919131`

Holmgren, W. F., Hansen, C. W., Mikofski, M. A. (2018). pvlib python: a python
package for modeling solar energy systems. JOSS 3(29), 884.
:doi:`10.21105/joss.00884`
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pvlib
from pydantic import Field, model_validator

from vpp.assets import register
from vpp.assets.base import FleetContext, FleetParams, WeatherDrivenSource
from vpp.assets.wind import hub_wind_speed_power_law
from vpp.errors import FieldError
from vpp.exogenous.series import Exogenous
from vpp.flex import CurtailableSource, HorizonGrid
from vpp.params import InputModel, ranged, sample

__all__ = [
    "PVParams",
    "PVFleet",
    "SapmTemperature",
    "SapmMounting",
    "PV_WIND_HEIGHT_M",
    "PV_WIND_SHEAR_EXPONENT",
    "PVWATTS_LOSS_FIELDS",
    "PVWATTS_DEFAULT_LOSSES_FRAC",
    "combined_losses_frac",
    "pv_ac_power_kw",
]

PV_WIND_HEIGHT_M = 10.0
"""Height of the wind speed the SAPM temperature model expects. [m]"""

PV_WIND_SHEAR_EXPONENT = 1.0 / 7.0
"""Power-law exponent bringing a regime's wind down to 10 m (the "1/7 law"). [-]"""

PVWATTS_LOSS_FIELDS = (
    "soiling_loss_frac",
    "shading_loss_frac",
    "snow_loss_frac",
    "mismatch_loss_frac",
    "wiring_loss_frac",
    "connections_loss_frac",
    "lid_loss_frac",
    "nameplate_rating_loss_frac",
    "age_loss_frac",
    "availability_loss_frac",
)
"""The PVWatts v5 loss categories, as :class:`PVParams` fields (Dobos 2014, "System Losses")."""

SapmMounting = Literal[
    "open_rack_glass_glass",
    "close_mount_glass_glass",
    "open_rack_glass_polymer",
    "insulated_back_glass_polymer",
]
"""Named SAPM mountings: ``open_rack_glass_glass``, ``close_mount_glass_glass``,
``open_rack_glass_polymer``, ``insulated_back_glass_polymer`` (King et al. 2004)."""



class SapmTemperature(InputModel):
    """Explicit SAPM cell-temperature coefficients (King et al. 2004, eq. 11-12)."""

    a: float = Field(le=0)
    b: float = Field(le=0)
    delta_t_k: float = Field(ge=0)


class PVParams(FleetParams):
    """Parameters of a PV fleet.  Numbers or distributions drawn once per asset.

    Defaults describe a commercial rooftop system in Shanghai (assumptions).
    """

    p_dc_kwp: ranged(gt=0, le=1e6) = 500.0
    """DC rating at STC per asset (at most 1 GWp). [kWp]"""
    tilt_deg: ranged(ge=0, le=90) = 20.0
    """Surface tilt from horizontal (near the ~22 deg annual optimum at 31 N). [deg]"""
    azimuth_deg: ranged(ge=0, le=360) = 180.0
    """Surface azimuth, clockwise from north (180 = south). [deg]"""
    gamma_pdc_per_k: ranged(ge=-0.02, le=0) = -0.0037
    """Temperature coefficient of DC power. [1/K]"""
    dc_ac_ratio: ranged(gt=0, le=3) = 1.2
    """DC rating over inverter AC rating (PVWatts default 1.2; at most 3). [-]"""
    inverter_eta_nom: ranged(gt=0, le=1) = 0.96
    """Nominal inverter efficiency (PVWatts default). [-]"""
    # System losses: the PVWatts v5 categories and defaults (Dobos 2014,
    # NREL/TP-6A20-62641, "System Losses"), combined as 1 - prod(1 - l_i) = 14.08 %.
    soiling_loss_frac: ranged(ge=0, le=1) = 0.02
    """Dirt, dust and bird droppings on the modules (PVWatts default 2 %). [-]"""
    shading_loss_frac: ranged(ge=0, le=1) = 0.03
    """Shading by nearby objects and other rows (PVWatts default 3 %). [-]"""
    snow_loss_frac: ranged(ge=0, le=1) = 0.0
    """Snow cover (PVWatts default 0 %; negligible in Shanghai). [-]"""
    mismatch_loss_frac: ranged(ge=0, le=1) = 0.02
    """Module-to-module electrical mismatch (PVWatts default 2 %). [-]"""
    wiring_loss_frac: ranged(ge=0, le=1) = 0.02
    """Resistive losses in DC and AC wiring (PVWatts default 2 %). [-]"""
    connections_loss_frac: ranged(ge=0, le=1) = 0.005
    """Resistive losses in connectors (PVWatts default 0.5 %). [-]"""
    lid_loss_frac: ranged(ge=0, le=1) = 0.015
    """Light-induced degradation in the first months (PVWatts default 1.5 %). [-]"""
    nameplate_rating_loss_frac: ranged(ge=0, le=1) = 0.01
    """Shortfall of the modules' true rating from the nameplate (PVWatts default 1 %). [-]"""
    age_loss_frac: ranged(ge=0, le=1) = 0.0
    """Ageing beyond the first year (PVWatts default 0 %). [-]"""
    availability_loss_frac: ranged(ge=0, le=1) = 0.03
    """Downtime for maintenance, grid outages and faults (PVWatts default 3 %). [-]"""
    losses_frac: ranged(ge=0, le=1) | None = None
    """Total system losses; when given, it replaces the itemised losses above
    (give one or the other).  ``None``: combine the items. [-]"""
    albedo: ranged(ge=0, le=1) = 0.2
    """Ground (roof) reflectance. [-]"""
    temperature_model: SapmMounting | SapmTemperature = "open_rack_glass_polymer"
    """SAPM mounting by name, or explicit coefficients.  Flush-mounted systems
    on steel roofs run hotter: use ``close_mount_glass_glass`` for those."""
    iam_model: Literal["physical", "no_loss"] = "physical"
    """Incidence-angle losses on the beam: De Soto physical model, or none."""
    transposition_model: Literal["haydavies", "perez", "isotropic"] = "haydavies"
    """Sky-diffuse transposition to the plane of array: Hay & Davies (1980), as pvlib's
    ModelChain defaults; Perez et al. (1990), relative air mass from Kasten & Young
    (1989); or isotropic (Liu & Jordan 1963)."""
    wind_regime: str = "onshore"
    """Wind regime of the Exogenous used for cell cooling (taken to 10 m)."""

    @model_validator(mode="after")
    def _total_or_items(self):
        items = self.model_fields_set.intersection(PVWATTS_LOSS_FIELDS)
        if self.losses_frac is not None and items:
            raise ValueError(
                f"losses_frac replaces the itemised losses; do not also give {', '.join(sorted(items))}"
            )
        return self


def combined_losses_frac(*losses_frac):
    """Total system loss from independent loss items, as PVWatts combines them.

    ``L = 1 - prod_i (1 - l_i)`` (Dobos 2014, "System Losses"; pvlib's
    :func:`~pvlib.pvsystem.pvwatts_losses` is the same in percent).

    Parameters
    ----------
    *losses_frac : numeric
        Loss items, each a fraction of the energy left by the previous ones. [-]

    Returns
    -------
    numeric
        Total loss fraction. [-]
    """
    kept = 1.0
    for loss in losses_frac:
        kept = kept * (1.0 - np.asarray(loss, dtype=float))
    return 1.0 - kept


PVWATTS_DEFAULT_LOSSES_FRAC = float(
    combined_losses_frac(*(PVParams.model_fields[f].default for f in PVWATTS_LOSS_FIELDS))
)
"""Total of PVWatts' default losses, 14.08 % (Dobos 2014, "System Losses"). [-]"""


def pv_ac_power_kw(
    p_dc_kwp,
    tilt_deg,
    azimuth_deg,
    solar_apparent_zenith_deg,
    solar_azimuth_deg,
    dni_extra_w_m2,
    ghi_w_m2,
    dni_w_m2,
    dhi_w_m2,
    temp_air_c,
    wind_speed_10m_m_s,
    *,
    albedo=0.2,
    gamma_pdc_per_k=-0.0037,
    dc_ac_ratio=1.2,
    inverter_eta_nom=0.96,
    losses_frac=PVWATTS_DEFAULT_LOSSES_FRAC,
    sapm_a=-3.56,
    sapm_b=-0.075,
    sapm_delta_t_k=3.0,
    iam_model="physical",
    transposition_model="haydavies",
):
    """AC power of fixed-tilt PV systems (PVWatts v5 chain, see module docstring).

    All inputs broadcast with numpy rules: pass system parameters as column
    vectors ``(N, 1)`` and weather as rows ``(1, T)`` for an ``(N, T)`` result.

    Parameters
    ----------
    p_dc_kwp : numeric
        DC rating at STC. [kWp]
    tilt_deg, azimuth_deg : numeric
        Surface tilt and azimuth (clockwise from north). [deg]
    solar_apparent_zenith_deg, solar_azimuth_deg : numeric
        Refraction-corrected solar zenith and solar azimuth. [deg]
    dni_extra_w_m2 : numeric
        Extraterrestrial normal irradiance. [W/m2]
    ghi_w_m2, dni_w_m2, dhi_w_m2 : numeric
        Global horizontal, direct normal and diffuse horizontal irradiance. [W/m2]
    temp_air_c : numeric
        Air temperature. [degC]
    wind_speed_10m_m_s : numeric
        Wind speed at 10 m. [m/s]
    albedo : numeric
        Ground reflectance. [-]
    gamma_pdc_per_k : numeric
        Temperature coefficient of DC power. [1/K]
    dc_ac_ratio : numeric
        DC rating over AC rating. [-]
    inverter_eta_nom : numeric
        Nominal inverter efficiency. [-]
    losses_frac : numeric
        Total system losses (see :func:`combined_losses_frac`), applied to
        DC power. [-]
    sapm_a, sapm_b, sapm_delta_t_k : numeric
        SAPM temperature coefficients: ``a`` [-], ``b`` [s/m], ``deltaT`` [K].
    iam_model : {"physical", "no_loss"}
        Incidence-angle modifier applied to the beam component.
    transposition_model : {"haydavies", "perez", "isotropic"}
        Sky-diffuse model of :func:`pvlib.irradiance.get_total_irradiance`
        (Perez with pvlib's default relative air mass).

    Returns
    -------
    ndarray
        AC power, mean over the interval, generator sign (>= 0). [kW]
    """
    irr = pvlib.irradiance.get_total_irradiance(
        tilt_deg,
        azimuth_deg,
        solar_apparent_zenith_deg,
        solar_azimuth_deg,
        dni_w_m2,
        ghi_w_m2,
        dhi_w_m2,
        dni_extra=dni_extra_w_m2,
        albedo=albedo,
        model=transposition_model,
    )
    if iam_model == "physical":
        aoi = pvlib.irradiance.aoi(
            tilt_deg, azimuth_deg, solar_apparent_zenith_deg, solar_azimuth_deg
        )
        iam = pvlib.iam.physical(aoi)
    elif iam_model == "no_loss":
        iam = 1.0
    else:
        raise ValueError(f"unknown iam_model {iam_model!r}")
    effective_w_m2 = irr["poa_direct"] * iam + irr["poa_diffuse"]
    temp_cell_c = pvlib.temperature.sapm_cell(
        irr["poa_global"], temp_air_c, wind_speed_10m_m_s, sapm_a, sapm_b, sapm_delta_t_k
    )
    p_dc_kw = pvlib.pvsystem.pvwatts_dc(effective_w_m2, temp_cell_c, p_dc_kwp, gamma_pdc_per_k)
    p_dc_kw = p_dc_kw * (1.0 - np.asarray(losses_frac))
    # pvlib's inverter pdc0 is the DC input limit: P_ac0 = eta_nom * pdc0.
    p_ac_rated_kw = np.asarray(p_dc_kwp) / np.asarray(dc_ac_ratio)
    p_ac_kw = pvlib.inverter.pvwatts(
        p_dc_kw, p_ac_rated_kw / np.asarray(inverter_eta_nom), eta_inv_nom=inverter_eta_nom
    )
    return np.maximum(np.asarray(p_ac_kw, dtype=float), 0.0)


def _sapm_coefficients(model: str | SapmTemperature) -> tuple[float, float, float]:
    if isinstance(model, SapmTemperature):
        return model.a, model.b, model.delta_t_k
    c = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][model]
    return c["a"], c["b"], c["deltaT"]


# Per-asset parameters that shape the normalised (per kWp) output.  p_dc_kwp
# scales it linearly (PVWatts DC, losses and inverter are homogeneous of
# degree one in size), so systems that share these are computed once.
# losses_frac is the combined total (drawn last, so the loss items do not
# change the draws of the other parameters).
_SHAPE_FIELDS = (
    "tilt_deg",
    "azimuth_deg",
    "gamma_pdc_per_k",
    "dc_ac_ratio",
    "inverter_eta_nom",
    "losses_frac",
    "albedo",
)
_DRAWN_FIELDS = tuple(f for f in _SHAPE_FIELDS if f != "losses_frac")


@register
class PVFleet(WeatherDrivenSource):
    """N fixed-tilt PV systems; curtailable green sources.

    Available power is a pure function of weather, so it is computed for
    all assets over chunks of steps (up to a day) and cached; the engine's
    per-step calls only index the cache.  Systems sharing every parameter but
    size are computed once.
    """

    type_name = "pv"
    Params = PVParams

    def __init__(self, ctx: FleetContext, params: PVParams):
        super().__init__(ctx, params)
        n = self.n_assets
        self.p_dc_kwp = sample(params.p_dc_kwp, self.rng, n)
        drawn = {f: sample(getattr(params, f), self.rng, n) for f in _DRAWN_FIELDS}
        if params.losses_frac is not None:
            drawn["losses_frac"] = sample(params.losses_frac, self.rng, n)
        else:
            items = [sample(getattr(params, f), self.rng, n) for f in PVWATTS_LOSS_FIELDS]
            drawn["losses_frac"] = combined_losses_frac(*items)
        shape = np.column_stack([drawn[f] for f in _SHAPE_FIELDS])
        self._systems, self._system_of = np.unique(shape, axis=0, return_inverse=True)
        self._system_of = self._system_of.reshape(-1)
        for j, f in enumerate(_SHAPE_FIELDS):
            setattr(self, f, shape[:, j])
        self.p_ac_rated_kw = self.p_dc_kwp / self.dc_ac_ratio
        self._sapm = _sapm_coefficients(params.temperature_model)
        if params.wind_regime not in self.exo.wind_speed_m_s:
            raise FieldError(
                ("wind_regime",),
                f"{params.wind_regime!r} is not a wind regime of the weather "
                f"(weather.wind_regimes: {', '.join(sorted(self.exo.wind_speed_m_s)) or 'none'})",
            )

    # -- physics ---------------------------------------------------------
    def _per_kwp(self, exo: Exogenous, k0: int, n: int) -> np.ndarray:
        """AC power per kWp of each distinct system, steps ``k0 .. k0+n-1``. [kW/kWp]"""
        s = slice(k0, k0 + n)
        regime = self.params.wind_regime
        wind_10m = hub_wind_speed_power_law(  # 1/7 power law (Peterson & Hennessey 1978)
            exo.wind_speed_m_s[regime][s], exo.wind_ref_height_m[regime], PV_WIND_HEIGHT_M,
            PV_WIND_SHEAR_EXPONENT,
        )
        cols = {f: self._systems[:, [j]] for j, f in enumerate(_SHAPE_FIELDS)}
        a, b, dt = self._sapm
        return pv_ac_power_kw(
            1.0,
            cols["tilt_deg"],
            cols["azimuth_deg"],
            exo.solar_apparent_zenith_deg[None, s],
            exo.solar_azimuth_deg[None, s],
            exo.dni_extra_w_m2[None, s],
            exo.ghi_w_m2[None, s],
            exo.dni_w_m2[None, s],
            exo.dhi_w_m2[None, s],
            exo.temp_air_c[None, s],
            wind_10m[None, :],
            albedo=cols["albedo"],
            gamma_pdc_per_k=cols["gamma_pdc_per_k"],
            dc_ac_ratio=cols["dc_ac_ratio"],
            inverter_eta_nom=cols["inverter_eta_nom"],
            losses_frac=cols["losses_frac"],
            sapm_a=a,
            sapm_b=b,
            sapm_delta_t_k=dt,
            iam_model=self.params.iam_model,
            transposition_model=self.params.transposition_model,
        )

    def _available_chunk_kw(self, k0: int, n: int) -> np.ndarray:
        """AC power available per asset, steps ``k0 .. k0+n-1``. [kW]"""
        return self._per_kwp(self.exo, k0, n)[self._system_of] * self.p_dc_kwp[:, None]

    # -- flexibility -----------------------------------------------------
    def flexibility(self, grid: HorizonGrid, forecast: Exogenous) -> list[CurtailableSource]:
        """``0 <= p <= forecast available power``, block means per asset. [kW]"""
        per_kwp = self._per_kwp(forecast, 0, grid.n_steps)
        p_max_kw = grid.mean(per_kwp)[self._system_of] * (self.p_dc_kwp * self._up)[:, None]   # down: none
        return [CurtailableSource(self.name, self.node, p_max_kw)]

    # -- records -----------------------------------------------------------
    def info(self) -> dict[str, float]:
        return {
            "p_rated_kw": float(self.p_ac_rated_kw.sum()),
            "p_dc_kwp": float(self.p_dc_kwp.sum()),
        }
