"""Commercial buildings: a first-order RC thermal model with HVAC, plus base load.

Thermal model (lumped 1R1C, e.g. Sonderegger 1978; as used for building
demand response by Mathieu et al., IEEE TPWRS 28(1), 2013,
doi:10.1109/TPWRS.2012.2209899):

.. math::

    C \\frac{dT}{dt} = UA\\,(T_{out} - T) + Q_{int} + Q_{sol} + h\\,P_{hvac}

with :math:`h = -COP_c` when cooling, :math:`+COP_h` when heating.  With
inputs held over a step of length :math:`\\Delta t` the exact (zero-order
hold) discretisation is

.. math::

    T_{k+1} = a T_k + (1 - a)\\left(T_{out} + \\frac{Q_{int} + Q_{sol} + h P}{UA}\\right),
    \\quad a = e^{-\\Delta t\\,UA / C},

which is linear in :math:`P`: the :class:`vpp.flex.Thermal` form is exactly
this map, so the optimizer needs no physics.

Sizing is per floor area so that one parameter set scales with building size
(docs/SOURCES.md default: ~2.5 MW peak, HVAC ~40 % of peak, i.e. about 40,000 m2 at
37.5 W/m2 non-HVAC plus 25 W/m2 HVAC electric).  Schedules follow the shapes
of the US DOE commercial reference buildings (Deru et al., NREL/TP-5500-46861,
2011); their use for Shanghai is an assumption.  Setpoints follow China's
public-building rule (summer cooling not below 26 degC, winter heating not
above 20 degC; 公共建筑室内温度控制管理办法, 2007): uncontrolled buildings hold
those setpoints, and a controlled building may pre-cool (pre-heat) inside a
comfort band below (above) them -- never below (above) the band, and never
beyond the setpoint while occupied.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from vpp.assets import register
from vpp.assets.base import Fleet, FleetContext, FleetParams
from vpp.flex import FixedProfile, HorizonGrid, Thermal
from vpp.params import ranged, sample

__all__ = ["BuildingParams", "BuildingFleet", "rc_step", "rc_coefficients", "SCHEDULES"]

# Non-HVAC load as a fraction of its peak, by local hour (weekday, weekend),
# and occupied hours [open, close).  Assumption-grade shapes after the DOE
# reference buildings.
SCHEDULES = {
    "office": {
        "weekday": (0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.35, 0.50, 0.85, 0.95, 1.00, 1.00,
                    0.90, 0.95, 1.00, 1.00, 0.95, 0.85, 0.65, 0.50, 0.40, 0.35, 0.32, 0.30),
        "weekend": (0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.32, 0.35, 0.40, 0.40, 0.40,
                    0.40, 0.40, 0.40, 0.38, 0.35, 0.32, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30),
        "open_weekday": (8, 19),
        "open_weekend": None,
    },
    "mall": {
        "weekday": (0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.30, 0.40, 0.70, 0.95, 1.00,
                    1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 0.95, 0.60, 0.30),
        "weekend": (0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.30, 0.40, 0.70, 0.95, 1.00,
                    1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 0.95, 0.60, 0.30),
        "open_weekday": (10, 22),
        "open_weekend": (10, 22),
    },
    "hotel": {
        "weekday": (0.55, 0.50, 0.50, 0.50, 0.50, 0.55, 0.70, 0.85, 0.80, 0.70, 0.65, 0.65,
                    0.65, 0.65, 0.65, 0.65, 0.70, 0.80, 0.90, 1.00, 1.00, 0.95, 0.80, 0.65),
        "weekend": (0.55, 0.50, 0.50, 0.50, 0.50, 0.55, 0.65, 0.80, 0.85, 0.75, 0.70, 0.70,
                    0.70, 0.70, 0.70, 0.70, 0.75, 0.85, 0.95, 1.00, 1.00, 0.95, 0.80, 0.65),
        "open_weekday": (0, 24),
        "open_weekend": (0, 24),
    },
}

COOLING, OFF, HEATING = -1, 0, 1


class BuildingParams(FleetParams):
    """Parameters of a commercial-building fleet (per building; distributions allowed)."""

    building_type: Literal["office", "mall", "hotel"] = "office"
    floor_area_m2: ranged(gt=0) = 40_000.0
    base_load_peak_w_per_m2: ranged(ge=0) = 37.5     # non-HVAC electric peak
    hvac_p_max_w_per_m2: ranged(ge=0) = 25.0         # HVAC electric capacity
    cop_cooling: ranged(gt=0) = 3.5                  # chiller plant incl. auxiliaries (assumption)
    cop_heating: ranged(gt=0) = 3.0                  # air-source heat pump (assumption)
    ua_w_per_m2k: ranged(gt=0) = 2.0                 # envelope + ventilation conductance
    capacitance_kj_per_m2k: ranged(gt=0) = 80.0      # effective thermal mass (tau ~ 11 h)
    solar_aperture_frac: ranged(ge=0) = 0.02         # effective solar aperture per m2 floor, of GHI
    internal_gain_frac: float = Field(0.9, ge=0, le=1)   # share of non-HVAC load released indoors
    occupant_gain_w_per_m2: float = Field(8.0, ge=0)
    cooling_setpoint_c: float = 26.0
    heating_setpoint_c: float = 20.0
    comfort_band_k: float = Field(2.0, ge=0)
    setback_min_c: float = 15.0
    setback_max_c: float = 30.0
    start_before_open_h: float = Field(1.0, ge=0, le=6)  # uncontrolled morning start
    cooling_months: tuple[int, ...] = (5, 6, 7, 8, 9, 10)
    heating_months: tuple[int, ...] = (12, 1, 2, 3)
    base_load_noise_frac: float = Field(0.05, ge=0, lt=1)   # AR(1) deviation from schedule
    base_load_noise_h: float = Field(2.0, gt=0)
    temp_init_c: float | None = None                  # default: the active setpoint
    # Penalty per kelvin-hour outside the band, per m2 of floor: 0.05 CNY/(m2 K h)
    # is 2,000 CNY/(K h) for 40,000 m2 -- far above what pre-cooling can save
    # (~300 CNY per kelvin of stored coolth), so comfort is kept whenever the
    # HVAC can keep it (assumption).
    discomfort_cost_cny_per_m2_kh: float = Field(0.05, ge=0)


def rc_coefficients(dt_h, ua_kw_per_k, c_kwh_per_k, heat_per_kw):
    """Exact discretisation of the 1R1C model over *dt_h*.

    Returns
    -------
    a, b_k_per_kw, gain_k_per_kw : ndarray
        Coefficients of ``T' = a T + (1 - a) T_out + gain Q + b P`` where
        ``gain = (1 - a) / UA`` [K/kW] multiplies heat gains and
        ``b = gain * heat_per_kw`` [K/kW] multiplies HVAC electric power.
    """
    a = np.exp(-np.asarray(dt_h) * ua_kw_per_k / c_kwh_per_k)
    gain = (1.0 - a) / ua_kw_per_k
    return a, gain * heat_per_kw, gain


def rc_step(temp_c, temp_out_c, q_gain_kw, p_hvac_kw, heat_per_kw, ua_kw_per_k, c_kwh_per_k, dt_h):
    """Indoor temperature after one step with inputs held constant.

    Parameters
    ----------
    temp_c : array_like
        Indoor temperature at the start of the step. [degC]
    temp_out_c : array_like
        Outdoor air temperature. [degC]
    q_gain_kw : array_like
        Internal and solar heat gains. [kW]
    p_hvac_kw : array_like
        HVAC electric power (>= 0). [kW]
    heat_per_kw : array_like
        Heat delivered per electric kW: ``-COP`` cooling, ``+COP`` heating. [-]
    ua_kw_per_k, c_kwh_per_k : array_like
        Conductance [kW/K] and heat capacity [kWh/K].
    dt_h : float
        Step length. [h]

    Returns
    -------
    ndarray
        Indoor temperature at the end of the step. [degC]
    """
    a, b, gain = rc_coefficients(dt_h, ua_kw_per_k, c_kwh_per_k, heat_per_kw)
    return a * temp_c + (1.0 - a) * temp_out_c + gain * q_gain_kw + b * p_hvac_kw


@register
class BuildingFleet(Fleet):
    """A fleet of commercial buildings of one type (vectorised).

    The setpoint addresses the flexible part only: HVAC electric power
    (generator sign, so ``-P_hvac``).  The non-HVAC base load follows its
    schedule and is not controllable.  Whatever the request, the building
    keeps its temperature inside the comfort band (occupied) or the setback
    band (unoccupied) when its HVAC capacity allows.
    """

    type_name = "building"
    Params = BuildingParams
    role = "load"
    state_columns = ("p_hvac_kw", "p_base_kw", "temp_mean_c", "temp_max_c", "comfort_violation_kh",
                     "comfort_too_hot_kh", "comfort_too_cold_kh", "comfort_lo_c", "comfort_hi_c")

    def __init__(self, ctx: FleetContext, params: BuildingParams):
        super().__init__(ctx, params)
        n, p, rng = self.n_assets, params, self.rng
        area = sample(p.floor_area_m2, rng, n)
        self.base_peak_kw = sample(p.base_load_peak_w_per_m2, rng, n) * area / 1e3
        self.p_max_kw = sample(p.hvac_p_max_w_per_m2, rng, n) * area / 1e3
        self.cop_c = sample(p.cop_cooling, rng, n)
        self.cop_h = sample(p.cop_heating, rng, n)
        self.ua = sample(p.ua_w_per_m2k, rng, n) * area / 1e3                    # kW/K
        self.cap = sample(p.capacitance_kj_per_m2k, rng, n) * area / 3600.0       # kWh/K
        self.aperture_m2 = sample(p.solar_aperture_frac, rng, n) * area
        self.occupant_kw = p.occupant_gain_w_per_m2 * area / 1e3
        self.discomfort_cost = p.discomfort_cost_cny_per_m2_kh * area
        self._calendar = _Calendar(ctx.timeline.padded_index, p)
        self._noise_phi = np.exp(-self.dt_h / p.base_load_noise_h)
        self._noise = rng.normal(0.0, p.base_load_noise_frac, n)
        mode0 = self._calendar.mode[0]
        t0 = p.heating_setpoint_c if mode0 == HEATING else p.cooling_setpoint_c
        self.temp_c = np.full(n, p.temp_init_c if p.temp_init_c is not None else t0)
        self.p_hvac_kw = np.zeros(n)
        self.p_base_kw = np.zeros(n)
        self._too_hot_kh = self._too_cold_kh = 0.0
        self._k = 0

    # -- per-step inputs -------------------------------------------------
    def _heat_per_kw(self, mode: np.ndarray) -> np.ndarray:
        """Heat per electric kW for modes (..., steps) -> (N, steps)."""
        mode = np.atleast_1d(mode)
        return np.where(mode == COOLING, -self.cop_c[:, None],
                        np.where(mode == HEATING, self.cop_h[:, None], 0.0))

    def _gains_kw(self, base_kw, ghi_w_m2, occupied):
        """Internal + solar gains [kW], shapes broadcast over (N, steps)."""
        return (self.params.internal_gain_frac * base_kw
                + self.occupant_kw[:, None] * occupied
                + self.aperture_m2[:, None] * np.asarray(ghi_w_m2) / 1e3)

    def _band(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Comfort band (lo, hi) at the END of steps *k*. [degC]"""
        return self._calendar.band_lo[k], self._calendar.band_hi[k]

    # -- physics ---------------------------------------------------------
    def baseline_setpoint(self, k: int) -> np.ndarray:
        """Thermostat: hold the setpoint (with an early morning start)."""
        cal = self._calendar
        free = self._free_temp(k, self._base_load(k))
        b = self._b(k)
        target = cal.thermostat[k]
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(b != 0, (target - free) / b, 0.0)
        if cal.mode[k] == COOLING:
            p = np.where(free > target, p, 0.0)
        elif cal.mode[k] == HEATING:
            p = np.where(free < target, p, 0.0)
        return -np.clip(np.nan_to_num(p), 0.0, self.p_max_kw)

    def _free_temp(self, k: int, base_kw: np.ndarray) -> np.ndarray:
        """Temperature at the end of step k with the HVAC off. [degC]"""
        q = self._gains_kw(base_kw[:, None], self.exo.ghi_w_m2[k], self._calendar.occupied[k])[:, 0]
        return rc_step(self.temp_c, self.exo.temp_air_c[k], q, 0.0, 0.0, self.ua, self.cap, self.dt_h)

    def _b(self, k: int) -> np.ndarray:
        heat = self._heat_per_kw(self._calendar.mode[k:k + 1])[:, 0]
        return rc_coefficients(self.dt_h, self.ua, self.cap, heat)[1]

    def _base_load(self, k: int) -> np.ndarray:
        return self.base_peak_kw * self._calendar.base_frac[k] * (1.0 + self._noise)

    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        base = self._base_load(k)
        free = self._free_temp(k, base)
        b = self._b(k)
        lo, hi = self._band(k)
        p_cap = np.where(b != 0, self.p_max_kw, 0.0)
        # Power range keeping T' = free + b P inside [lo, hi]; keeping the
        # upper (cooling) or lower (heating) bound wins over the other.
        with np.errstate(divide="ignore", invalid="ignore"):
            p_keep_hi = np.where(b < 0, (hi - free) / b, 0.0)    # cooling: P >= this
            p_keep_lo = np.where(b > 0, (lo - free) / b, 0.0)    # heating: P >= this
            p_not_below = np.where(b < 0, (lo - free) / b, np.where(b > 0, (hi - free) / b, np.inf))
        p_need = np.clip(np.maximum(p_keep_hi, p_keep_lo), 0.0, p_cap)
        p_room = np.clip(p_not_below, p_need, p_cap)
        request = np.nan_to_num(-setpoint_kw, nan=0.0, posinf=0.0, neginf=0.0)
        p_hvac = np.clip(request, p_need, p_room)
        self.temp_c = free + b * p_hvac
        self.p_hvac_kw = p_hvac
        self.p_base_kw = base
        self._too_hot_kh, self._too_cold_kh = (v * self.dt_h for v in self._violation(k))
        self._k = k
        self._advance_noise()
        return -(p_hvac + base)

    def _violation(self, k: int) -> tuple[float, float]:
        """Kelvins above and below the comfort band at the end of step *k*, summed over
        buildings (occupied steps only). [K]"""
        if not self._calendar.occupied[k]:
            return 0.0, 0.0
        lo, hi = self._calendar.comfort_lo[k], self._calendar.comfort_hi[k]
        return float(np.maximum(self.temp_c - hi, 0.0).sum()), float(np.maximum(lo - self.temp_c, 0.0).sum())

    def _advance_noise(self):
        p = self.params
        innov = self.rng.normal(0.0, p.base_load_noise_frac * np.sqrt(1 - self._noise_phi ** 2), self.n_assets)
        self._noise = self._noise_phi * self._noise + innov

    # -- flexibility -----------------------------------------------------
    def flexibility(self, grid: HorizonGrid, forecast) -> list:
        cal = self._calendar
        ks = grid.k0 + np.arange(grid.n_steps)
        err = 0.0 if forecast.load_error_frac is None else forecast.load_error_frac
        base = self.base_peak_kw[:, None] * cal.base_frac[ks] * (1.0 + err)          # (N, S)
        gains = self._gains_kw(base, forecast.ghi_w_m2, cal.occupied[ks])
        first = grid.k0 + grid.starts
        heat = self._heat_per_kw(cal.mode[first])                                      # (N, H)
        dt = grid.dt_h[None, :]
        a, b, gain = rc_coefficients(dt, self.ua[:, None], self.cap[:, None], heat)
        d = (1.0 - a) * grid.mean(forecast.temp_air_c) + gain * grid.mean(gains)
        lo, hi = self._block_band(grid)
        n = self.n_assets
        p_max = np.where(heat != 0, self.p_max_kw[:, None], 0.0)
        return [
            Thermal(fleet=self.name, node=self.node, a=a, b_k_per_kw=b, d_k=d,
                    temp_init_c=self.temp_c.copy(), p_max_kw=p_max,
                    temp_min_c=np.broadcast_to(lo, (n, grid.n_blocks)).copy(),
                    temp_max_c=np.broadcast_to(hi, (n, grid.n_blocks)).copy(),
                    discomfort_cost_cny_per_kh=self.discomfort_cost.copy()),
            FixedProfile(fleet=self.name, node=self.node, p_kw=-grid.mean(base.sum(axis=0))),
        ]

    def _block_band(self, grid: HorizonGrid) -> tuple[np.ndarray, np.ndarray]:
        """Comfort band at each block's end: the tightest band of the steps in
        the block and of the step that starts at its end, so that a coarse
        block ending when occupancy begins already asks for comfort."""
        cal = self._calendar
        ks = grid.k0 + np.arange(grid.n_steps + 1)
        ks = np.minimum(ks, len(cal.band_lo) - 1)
        lo, hi = cal.band_lo[ks], cal.band_hi[ks]
        starts = grid.starts
        ends = starts + grid.steps_per_block          # index of the step starting at the block end
        lo_b = np.array([lo[a:b + 1].max() for a, b in zip(starts, ends, strict=True)])
        hi_b = np.array([hi[a:b + 1].min() for a, b in zip(starts, ends, strict=True)])
        return lo_b, hi_b

    def state(self) -> dict[str, float]:
        return {"p_hvac_kw": float(self.p_hvac_kw.sum()), "p_base_kw": float(self.p_base_kw.sum()),
                "temp_mean_c": float(self.temp_c.mean()), "temp_max_c": float(self.temp_c.max()),
                "comfort_violation_kh": self._too_hot_kh + self._too_cold_kh,
                "comfort_too_hot_kh": self._too_hot_kh, "comfort_too_cold_kh": self._too_cold_kh,
                "comfort_lo_c": float(self._calendar.band_lo[self._k]),
                "comfort_hi_c": float(self._calendar.band_hi[self._k])}

    def info(self) -> dict[str, float]:
        return {"p_rated_kw": float((self.p_max_kw + self.base_peak_kw).sum()),
                "p_hvac_max_kw": float(self.p_max_kw.sum())}


class _Calendar:
    """Per-step schedule quantities on the padded timeline (shared by the fleet)."""

    def __init__(self, index, p: BuildingParams):
        sched = SCHEDULES[p.building_type]
        hour = index.hour.to_numpy()
        frac_h = hour + index.minute.to_numpy() / 60.0
        weekend = index.day_of_week.to_numpy() >= 5
        month = index.month.to_numpy()
        self.base_frac = np.where(weekend, np.asarray(sched["weekend"])[hour], np.asarray(sched["weekday"])[hour])
        self.occupied = np.zeros(len(index), dtype=bool)
        self.conditioned = np.zeros(len(index), dtype=bool)
        for is_weekend, key in ((False, "open_weekday"), (True, "open_weekend")):
            hours = sched[key]
            if hours is None:
                continue
            day = weekend == is_weekend
            self.occupied |= day & (frac_h >= hours[0]) & (frac_h < hours[1])
            self.conditioned |= day & (frac_h >= hours[0] - p.start_before_open_h) & (frac_h < hours[1])
        self.mode = np.where(np.isin(month, p.cooling_months), COOLING,
                             np.where(np.isin(month, p.heating_months), HEATING, OFF))
        cool, heat = self.mode == COOLING, self.mode == HEATING
        sp_hi, sp_lo = p.cooling_setpoint_c, p.heating_setpoint_c
        # Comfort band while occupied: below the cooling setpoint / above the heating one.
        self.comfort_lo = np.where(cool, sp_hi - p.comfort_band_k, np.where(heat, sp_lo, p.setback_min_c))
        self.comfort_hi = np.where(cool, sp_hi, np.where(heat, sp_lo + p.comfort_band_k, p.setback_max_c))
        # Unoccupied: free to drift up to the setback (cooling) or down to it
        # (heating), but pre-cooling stops at the comfort band's floor and
        # pre-heating at its ceiling.
        self.band_lo = np.where(self.occupied | cool, self.comfort_lo, p.setback_min_c)
        self.band_hi = np.where(self.occupied | heat, self.comfort_hi, p.setback_max_c)
        # The uncontrolled thermostat target (setpoint while conditioned, else setback).
        self.thermostat = np.where(cool, np.where(self.conditioned, sp_hi, p.setback_max_c),
                                   np.where(heat, np.where(self.conditioned, sp_lo, p.setback_min_c), np.nan))
