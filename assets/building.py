"""Commercial buildings: a second-order thermal model with HVAC, plus base load.

Thermal model: the 3R2C network of :mod:`vpp.assets.thermal` (indoor air and
building mass), discretised exactly for each step, with a chiller or heat
pump whose COP follows the outdoor temperature.  The discretised map is
linear in the HVAC power, so the :class:`vpp.flex.Thermal` form (two states)
is exactly what the physics does, for the forecast weather; for building
demand response with RC models see e.g. Mathieu et al., IEEE TPWRS 28(1),
2013, doi:10.1109/TPWRS.2012.2209899.

Sizing is per floor area so that one parameter set scales with building size
(docs/SOURCES.md default: ~2.5 MW peak, HVAC ~40 % of peak, i.e. about 40,000 m2 at
37.5 W/m2 non-HVAC plus 25 W/m2 HVAC electric).  Envelope and mass follow the
ISO 13790 classes (light construction: mass 110 kJ/(m2 K), internal surface
coupling 9.1 W/(m2 K) x 2.5 m2 per m2 of floor); solar and internal gains are
split between air (convective) and mass (radiative).  Schedules follow the
shapes of the US DOE commercial reference buildings (Deru et al.,
NREL/TP-5500-46861, 2011); their use for Shanghai is an assumption.
Setpoints follow China's public-building rule (summer cooling not below
26 degC, winter heating not above 20 degC; 公共建筑室内温度控制管理办法, 2007):
uncontrolled buildings hold those setpoints, and a controlled building may
pre-cool (pre-heat) inside a comfort band below (above) them -- never below
(above) the band, and never beyond the setpoint while occupied.

The season sets the comfort band while occupied: 24-26 degC in the cooling
months, 20-22 degC in the heating months (GB 50736-2012 3.0.2 gives 18-22 degC
for heating and 26-28 degC for cooling at comfort level II; the public-building
rule caps heating at 20 and floors cooling at 26), and between the two
setpoints (20-26 degC) in the months between.  The plant -- a reversible heat
pump or chiller with heating, as VRF and four-pipe systems are -- runs in the
mode the room needs (``hvac_mode = "need"``, the default): it switches to
cooling when the room would rise above its band, to heating when it would fall
below it, and otherwise keeps its mode (a changeover controller with a
deadband).  So an office whose internal gains overheat it in winter is cooled,
by an air-side economiser (outdoor air, fans only: ``economiser_cop``) when the
outdoor air is at least ``economiser_min_dt_k`` below the comfort band's floor
(so it can cool the room to any temperature the band allows), else by the
chiller.  ``hvac_mode = "season"`` keeps the calendar's mode (cool in the
cooling months, heat in the heating months, nothing between), the model
before this change.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from vpp.assets import register
from vpp.assets.base import Fleet, FleetContext, FleetParams
from vpp.assets.thermal import RC2, cop_cooling, cop_heating
from vpp.errors import FieldError
from vpp.flex import FixedProfile, HorizonGrid, Thermal
from vpp.params import ranged, sample

__all__ = ["BuildingParams", "BuildingFleet", "SCHEDULES", "DailyAR1"]

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
MODE_TOL_K = 1e-9       # a room this far past its band's edge needs the other mode (rounding) [K]
INDOOR_C = (5.0, 40.0)  # plausible indoor setpoints and setbacks [degC]


class BuildingParams(FleetParams):
    """Parameters of a commercial-building fleet (per building; distributions allowed)."""

    building_type: Literal["office", "mall", "hotel"] = "office"
    """Hourly shape of the non-HVAC load (weekday, weekend) and the occupied hours, after the US DOE
    commercial reference buildings (Deru et al., NREL/TP-5500-46861, 2011; their use for Shanghai is an
    assumption): ``"office"`` open 08-19 h on weekdays and closed at weekends, ``"mall"`` 10-22 h every
    day, ``"hotel"`` always (``SCHEDULES``)."""
    floor_area_m2: ranged(gt=0, le=1e7) = 40_000.0
    """Floor area per building; every per-m2 parameter (loads, HVAC capacity, envelope, heat capacities,
    solar aperture, occupant gains, discomfort cost) scales with it.  Default: the docs/SOURCES.md
    building of ~2.5 MW peak, HVAC ~40 % of it, at 37.5 + 25 W/m2 (module docstring)."""
    base_load_peak_w_per_m2: ranged(ge=0, le=1000) = 37.5     # non-HVAC electric peak
    hvac_p_max_w_per_m2: ranged(ge=0, le=500) = 25.0         # HVAC electric capacity
    cop_cooling: ranged(gt=0, le=10) = 3.5                  # chiller plant incl. auxiliaries at 35 degC (assumption)
    cop_heating: ranged(gt=0, le=10) = 3.0                  # air-source heat pump at 7 degC (assumption)
    ua_air_out_w_per_m2k: ranged(gt=0) = 1.5         # windows + ventilation (assumption)
    ua_mass_out_w_per_m2k: ranged(gt=0) = 0.5        # opaque envelope (assumption)
    h_air_mass_w_per_m2k: ranged(gt=0) = 22.75       # ISO 13790: 9.1 W/(m2 K) x 2.5 m2/m2
    c_air_kj_per_m2k: ranged(gt=0) = 20.0            # air + furniture (assumption)
    c_mass_kj_per_m2k: ranged(gt=0) = 110.0          # ISO 13790 light class
    solar_to_mass_frac: float = Field(0.5, ge=0, le=1)      # radiative share of solar gains
    internal_to_mass_frac: float = Field(0.3, ge=0, le=1)   # radiative share of internal gains
    solar_aperture_frac: ranged(ge=0, le=1) = 0.02   # effective solar aperture per m2 floor, of GHI
    internal_gain_frac: float = Field(0.9, ge=0, le=1)   # share of non-HVAC load released indoors
    occupant_gain_w_per_m2: float = Field(8.0, ge=0, le=100)
    """Heat from occupants per m2 of floor, added to the internal gains in the schedule's occupied hours
    (split between air and mass by ``internal_to_mass_frac``); no electric load (assumption). [W/m²]"""
    # Indoor temperatures [degC] must be plausible for an occupied building
    # (INDOOR_C); heating <= cooling setpoint, setback band around both.
    cooling_setpoint_c: float = Field(26.0, ge=INDOOR_C[0], le=INDOOR_C[1])
    heating_setpoint_c: float = Field(20.0, ge=INDOOR_C[0], le=INDOOR_C[1])
    """Floor of the comfort band while occupied outside the cooling months (heating months: this to this
    + ``comfort_band_k``; between the seasons: this to ``cooling_setpoint_c``), which an uncontrolled
    building heats to in those months; between ``setback_min_c`` and ``cooling_setpoint_c``.  Default 20 degC:
    the winter cap of 公共建筑室内温度控制管理办法 (2007, official)."""
    comfort_band_k: float = Field(2.0, ge=0, le=10)
    """Width of the comfort band while occupied: ``cooling_setpoint_c`` minus this up to it in the
    cooling months, ``heating_setpoint_c`` up to it plus this in the heating months (unused between the
    seasons).  A controlled building may pre-cool (pre-heat) to the band's far edge, never beyond;
    time outside it costs ``discomfort_cost_cny_per_m2_kh``.  Default 2 K (24-26 and 20-22 degC):
    an assumption built on GB 50736-2012 3.0.2 and the 2007 public-building rule (docs/SOURCES.md)."""
    setback_min_c: float = Field(15.0, ge=INDOOR_C[0], le=INDOOR_C[1])
    """Floor of the band the plant keeps while the building is unoccupied (outside its schedule's open
    hours), and what an uncontrolled building heats to then; at most ``heating_setpoint_c``
    (assumption)."""
    setback_max_c: float = Field(30.0, ge=INDOOR_C[0], le=INDOOR_C[1])
    """Ceiling of the band the plant keeps while the building is unoccupied, and what an uncontrolled
    building cools to then; at least ``cooling_setpoint_c``, above ``setback_min_c`` (assumption)."""
    start_before_open_h: float = Field(1.0, ge=0, le=6)  # uncontrolled morning start
    cooling_months: tuple[int, ...] = (5, 6, 7, 8, 9, 10)
    """Months (1-12) of the cooling season: the comfort band lies below ``cooling_setpoint_c``, and with
    ``hvac_mode = "season"`` the plant only cools in them.  Months in neither list lie between the
    seasons (band from the heating to the cooling setpoint; no HVAC with ``"season"``).  Default
    May-October (assumption)."""
    heating_months: tuple[int, ...] = (12, 1, 2, 3)
    """Months (1-12) of the heating season: the comfort band lies above ``heating_setpoint_c``, and with
    ``hvac_mode = "season"`` the plant only heats in them; none may be a cooling month.  Default
    December-March (assumption)."""
    hvac_mode: Literal["need", "season"] = "need"            # see the module doc
    # Air-side economiser: cooling with outdoor air costs fan power only; 12 W of
    # cooling per W of fan is an assumption (fan ~0.3 W per m3/h moving air 3-10 K
    # cooler than the room); 0 disables it.
    economiser_cop: float = Field(12.0, ge=0, le=50)
    economiser_min_dt_k: float = Field(3.0, ge=0, le=30)
    """How far the outdoor air must be below the comfort band's floor for the economiser to cool (at
    ``economiser_cop`` where that beats the chiller), so that it can reach any temperature the band
    allows; only with ``hvac_mode = "need"`` (assumption, docs/SOURCES.md)."""
    base_load_noise_frac: float = Field(0.05, ge=0, lt=1)   # AR(1) deviation from schedule
    base_load_noise_h: float = Field(2.0, gt=0)
    """Correlation time of the AR(1) noise on each building's non-HVAC load (``base_load_noise_frac``
    its size; factor ``exp(-step / this)`` per step) (assumption)."""
    temp_init_c: float | None = Field(None, ge=-30, le=60)    # default: the active setpoint
    # Penalty per kelvin-hour outside the band, per m2 of floor: 0.05 CNY/(m2 K h)
    # is 2,000 CNY/(K h) for 40,000 m2 -- far above what pre-cooling can save
    # (~300 CNY per kelvin of stored coolth), so comfort is kept whenever the
    # HVAC can keep it (assumption).
    discomfort_cost_cny_per_m2_kh: float = Field(0.05, ge=0)

    @field_validator("cooling_months", "heating_months")
    @classmethod
    def _months(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [m for m in v if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"months are numbered 1 to 12, got {bad[0]}")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        both = sorted(set(self.cooling_months) & set(self.heating_months))
        if both:
            raise FieldError(("heating_months",), f"month {both[0]} is also a cooling month")
        if not self.heating_setpoint_c <= self.cooling_setpoint_c:
            raise FieldError(("heating_setpoint_c",), f"{self.heating_setpoint_c:g} degC is above the "
                             f"cooling setpoint ({self.cooling_setpoint_c:g} degC)")
        if not self.setback_min_c < self.setback_max_c:
            raise FieldError(("setback_max_c",), f"must be above setback_min_c ({self.setback_min_c:g} degC): "
                             "the setback band is reversed")
        if not self.setback_min_c <= self.heating_setpoint_c:
            raise FieldError(("setback_min_c",), f"{self.setback_min_c:g} degC is above the heating setpoint "
                             f"({self.heating_setpoint_c:g} degC)")
        if not self.cooling_setpoint_c <= self.setback_max_c:
            raise FieldError(("setback_max_c",), f"{self.setback_max_c:g} degC is below the cooling setpoint "
                             f"({self.cooling_setpoint_c:g} degC)")
        return self


def _limits(mode, comfort_lo, comfort_hi, need_lo, need_hi):
    """How far a request may move the room: the band it must keep (*need*), but
    pre-cooling stops at the comfort band's floor and pre-heating at its ceiling. [degC]"""
    return np.where(mode == COOLING, comfort_lo, need_lo), np.where(mode == HEATING, comfort_hi, need_hi)


def _least_power(free_air, b_air, need_lo, need_hi, cap):
    """The least HVAC power [kW] that brings the free-running air temperature
    *free_air* back inside ``[need_lo, need_hi]`` (cooling: ``b_air`` < 0 per kW;
    heating: > 0), at most *cap*; 0 with the plant off or the room inside."""
    target = np.where(b_air < 0, need_hi, need_lo)
    p = np.divide(target - free_air, b_air, out=np.zeros(np.shape(free_air)), where=b_air != 0)
    return np.clip(p, 0.0, cap)


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
    outage_ratings = ("p_max_kw",)            # the HVAC plant down: the room drifts, the base load runs
    role = "load"
    state_columns = ("p_hvac_kw", "p_base_kw", "temp_mean_c", "temp_max_c", "temp_mass_mean_c", "comfort_violation_kh",
                     "comfort_too_hot_kh", "comfort_too_cold_kh", "comfort_lo_c", "comfort_hi_c")

    def __init__(self, ctx: FleetContext, params: BuildingParams):
        super().__init__(ctx, params)
        n, p, rng = self.n_assets, params, self.rng
        area = sample(p.floor_area_m2, rng, n)
        self.base_peak_kw = sample(p.base_load_peak_w_per_m2, rng, n) * area / 1e3
        self.p_max_kw = sample(p.hvac_p_max_w_per_m2, rng, n) * area / 1e3
        self.cop_c = sample(p.cop_cooling, rng, n)
        self.cop_h = sample(p.cop_heating, rng, n)
        self.rc = RC2(g_ao_kw_per_k=sample(p.ua_air_out_w_per_m2k, rng, n) * area / 1e3,
                      g_am_kw_per_k=sample(p.h_air_mass_w_per_m2k, rng, n) * area / 1e3,
                      g_mo_kw_per_k=sample(p.ua_mass_out_w_per_m2k, rng, n) * area / 1e3,
                      c_air_kwh_per_k=sample(p.c_air_kj_per_m2k, rng, n) * area / 3600.0,
                      c_mass_kwh_per_k=sample(p.c_mass_kj_per_m2k, rng, n) * area / 3600.0)
        self._discrete: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self.aperture_m2 = sample(p.solar_aperture_frac, rng, n) * area
        self.occupant_kw = p.occupant_gain_w_per_m2 * area / 1e3
        self.discomfort_cost = p.discomfort_cost_cny_per_m2_kh * area
        self._calendar = _Calendar(ctx.timeline.padded_index, p)
        steps_per_day = max(1, round(24.0 / self.dt_h))
        self._noise = DailyAR1(np.random.default_rng(rng.integers(2**63)), n, np.exp(-self.dt_h / p.base_load_noise_h),
                               p.base_load_noise_frac, steps_per_day)
        season0 = self._calendar.season[0]
        t0 = p.heating_setpoint_c if season0 == HEATING else p.cooling_setpoint_c
        self.x_c = np.full((n, 2), p.temp_init_c if p.temp_init_c is not None else t0)   # (air, mass)
        self.mode = np.full(n, season0)                  # the plant's mode at the end of the last step
        self.p_hvac_kw = np.zeros(n)
        self.p_base_kw = np.zeros(n)
        self._too_hot_kh = self._too_cold_kh = 0.0
        self._k = 0

    # -- per-step inputs -------------------------------------------------
    @property
    def temp_c(self) -> np.ndarray:
        """Indoor air temperature per building. [degC]"""
        return self.x_c[:, 0]

    def _phi_gamma(self, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
        """Exact discretisation for a step of *dt_h*, cached per step length."""
        key = round(float(dt_h), 9)
        if key not in self._discrete:
            self._discrete[key] = self.rc.discrete(key)
        return self._discrete[key]

    def _heat_per_kw(self, mode, temp_out_c, comfort_lo_c) -> np.ndarray:
        """Heat delivered per electric kW: -COP cooling (the economiser's, if higher, when the
        outdoor air is ``economiser_min_dt_k`` below the comfort band's floor *comfort_lo_c*,
        the coolest the plant may bring the room to), +COP heating, 0 off; *mode* (N, ...),
        *temp_out_c* and *comfort_lo_c* scalars or (...)."""
        p = self.params
        mode = np.asarray(mode)
        t = np.broadcast_to(np.asarray(temp_out_c, dtype=float), mode.shape[1:])
        shape = (-1,) + (1,) * t.ndim
        cop_c = cop_cooling(t[None, ...], self.cop_c.reshape(shape))
        if p.hvac_mode == "need" and p.economiser_cop > 0:
            outdoor_air = t <= np.asarray(comfort_lo_c, dtype=float) - p.economiser_min_dt_k
            cop_c = np.where(outdoor_air, np.maximum(cop_c, p.economiser_cop), cop_c)
        heat = cop_heating(t[None, ...], self.cop_h.reshape(shape))
        return np.where(mode == COOLING, -cop_c, np.where(mode == HEATING, heat, 0.0))

    def _changeover(self, mode: np.ndarray, free_air_c: np.ndarray, need_lo_c, need_hi_c, season: int) -> np.ndarray:
        """The plant's mode for a step whose end, with the HVAC off, is *free_air_c*:
        cooling above the band, heating below it, else the mode it had (``"need"``);
        the calendar's *season* (``"season"``)."""
        if self.params.hvac_mode == "season":
            return np.full(self.n_assets, season)
        return np.where(free_air_c > need_hi_c + MODE_TOL_K, COOLING,
                        np.where(free_air_c < need_lo_c - MODE_TOL_K, HEATING, mode))

    def _inputs(self, temp_out_c, base_kw, ghi_w_m2, occupied) -> np.ndarray:
        """Inputs ``(T_o, Q_a, Q_m)`` [degC, kW, kW], shape (N, ..., 3)."""
        p = self.params
        internal = p.internal_gain_frac * np.asarray(base_kw) + self.occupant_kw.reshape(
            (-1,) + (1,) * (np.ndim(base_kw) - 1)) * occupied
        solar = self.aperture_m2.reshape((-1,) + (1,) * (np.ndim(base_kw) - 1)) * np.asarray(ghi_w_m2) / 1e3
        q_mass = p.internal_to_mass_frac * internal + p.solar_to_mass_frac * solar
        q_air = internal + solar - q_mass
        t_out = np.broadcast_to(np.asarray(temp_out_c, dtype=float), q_air.shape)
        return np.stack([t_out, q_air, q_mass], axis=-1)

    # -- physics ---------------------------------------------------------
    def baseline_setpoint(self, k: int) -> np.ndarray:
        """Thermostat: hold the setpoint of the plant's mode (with an early morning start)."""
        cal = self._calendar
        free, b, mode = self._free_and_b(k, self._base_load(k))
        target = np.where(mode == COOLING, cal.thermostat_cool[k], cal.thermostat_heat[k])
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(b[:, 0] != 0, (target - free[:, 0]) / b[:, 0], 0.0)
        p = np.where(mode == COOLING, np.where(free[:, 0] > target, p, 0.0),
                     np.where(mode == HEATING, np.where(free[:, 0] < target, p, 0.0), 0.0))
        return -np.clip(np.nan_to_num(p), 0.0, self.p_max_kw)

    def _free_and_b(self, k: int, base_kw: np.ndarray, mode: np.ndarray | None = None):
        """States at the end of step k with the HVAC off (N, 2), their change per kW of
        HVAC (N, 2), and the plant's mode (N,) -- the changeover's, unless *mode* is given."""
        cal = self._calendar
        phi, gamma = self._phi_gamma(self.dt_h)
        t_out = self.exo.temp_air_c[k]
        u = self._inputs(t_out, base_kw, self.exo.ghi_w_m2[k], cal.occupied[k])      # (N, 3)
        free = np.einsum("nij,nj->ni", phi, self.x_c) + np.einsum("nij,nj->ni", gamma, u)
        if mode is None:
            mode = self._changeover(self.mode, free[:, 0], cal.need_lo[k], cal.need_hi[k], cal.season[k])
        heat = self._heat_per_kw(mode, t_out, cal.comfort_lo[k])                       # (N,)
        return free, gamma[:, :, 1] * heat[:, None], mode

    def _base_load(self, k: int) -> np.ndarray:
        return self.base_peak_kw * self._calendar.base_frac[k] * (1.0 + self._noise.values(np.array([k]))[:, 0])

    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        cal = self._calendar
        base = self._base_load(k)
        self._x_start, self._mode_start = self.x_c, self.mode
        free2, b2, mode = self._free_and_b(k, base)
        free, b = free2[:, 0], b2[:, 0]
        lo, hi = _limits(mode, cal.comfort_lo[k], cal.comfort_hi[k], cal.need_lo[k], cal.need_hi[k])
        p_cap = np.where(b != 0, self.p_max_kw, 0.0)
        # Power range keeping the air temperature free + b P inside the band it must
        # keep (cooling keeps its top, heating its bottom), and not beyond the limits.
        p_need = _least_power(free, b, cal.need_lo[k], cal.need_hi[k], p_cap)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_not_below = np.where(b < 0, (lo - free) / b, np.where(b > 0, (hi - free) / b, np.inf))
        p_room = np.clip(p_not_below, p_need, p_cap)
        request = np.nan_to_num(-setpoint_kw, nan=0.0, posinf=0.0, neginf=0.0)
        p_hvac = np.clip(request, p_need, p_room)
        self._commit(k, free2, b2, p_hvac, base, mode)
        return -(p_hvac + base)

    def _commit(self, k: int, free2: np.ndarray, b2: np.ndarray, p_hvac: np.ndarray, base: np.ndarray,
                mode: np.ndarray) -> None:
        self.x_c = free2 + b2 * p_hvac[:, None]
        self.mode = mode
        self.p_hvac_kw = p_hvac
        self.p_base_kw = base
        self._too_hot_kh, self._too_cold_kh = (v * self.dt_h for v in self._violation(k))
        self._k = k

    def draw_kw(self) -> tuple[float, float]:
        """HVAC power is flexible, the base load fixed. [kW]"""
        return float(self.p_hvac_kw.sum()), float(self.p_base_kw.sum())

    def trip(self, k: int, flexible_frac: float, fixed_frac: float) -> np.ndarray:
        """Step *k* again from its start with the HVAC and base load cut by the
        fractions; a cut base load also stops heating the rooms (its internal gain)."""
        p_hvac, base = self.p_hvac_kw * (1.0 - flexible_frac), self.p_base_kw * (1.0 - fixed_frac)
        mode = self.mode                               # the plant runs in the mode it ran in
        self.x_c = self._x_start
        free2, b2, _ = self._free_and_b(k, base, mode)
        self._commit(k, free2, b2, p_hvac, base, mode)
        self.last_p_kw = -(p_hvac + base)
        return self.last_p_kw

    def controllable_kw(self) -> np.ndarray:
        """HVAC power of the last step, generator sign (the base load is not controllable). [kW]"""
        return -self.p_hvac_kw

    def _violation(self, k: int) -> tuple[float, float]:
        """Kelvins above and below the comfort band at the end of step *k*, summed over
        buildings (occupied steps only). [K]"""
        if not self._calendar.occupied[k]:
            return 0.0, 0.0
        lo, hi = self._calendar.comfort_lo[k], self._calendar.comfort_hi[k]
        return float(np.maximum(self.temp_c - hi, 0.0).sum()), float(np.maximum(lo - self.temp_c, 0.0).sum())

    # -- flexibility -----------------------------------------------------
    def flexibility(self, grid: HorizonGrid, forecast) -> list:
        """A two-state :class:`Thermal` form from the forecast weather and loads,
        and the base load as a :class:`FixedProfile`.  Each block's plant mode is
        the changeover's along the forecast under the thermostat's least power
        (:meth:`_forecast_modes`); a plan that follows it meets the physics."""
        cal = self._calendar
        ks = grid.k0 + np.arange(grid.n_steps)
        err = 0.0 if forecast.load_error_frac is None else forecast.load_error_frac
        actual = self.base_peak_kw[:, None] * cal.base_frac[ks] * (1.0 + self._noise.values(ks))
        base = actual * (1.0 + err)                                                   # forecast, (N, steps)
        u = self._inputs(forecast.temp_air_c, base, forecast.ghi_w_m2, cal.occupied[ks])     # (N, steps, 3)
        u_blocks = np.stack([grid.mean(u[..., j]) for j in range(3)], axis=-1)               # (N, H, 3)
        t_out_blocks = grid.mean(forecast.temp_air_c)                                        # (H,)
        need_lo, need_hi = self._block_band(grid, cal.need_lo, cal.need_hi)
        comfort_lo, comfort_hi = self._block_band(grid, cal.comfort_lo, cal.comfort_hi)
        n, h = self.n_assets, grid.n_blocks
        a, b, d = np.empty((n, h, 2, 2)), np.empty((n, h, 2)), np.empty((n, h, 2))
        gammas = []
        for t, dt in enumerate(grid.dt_h):
            phi, gamma = self._phi_gamma(dt)
            a[:, t] = phi
            d[:, t] = np.einsum("nij,nj->ni", gamma, u_blocks[:, t])
            gammas.append(gamma[:, :, 1])
        mode, heat = self._forecast_modes(a, gammas, d, t_out_blocks, need_lo, need_hi, comfort_lo,
                                          cal.season[np.minimum(grid.k0 + grid.starts, len(cal.season) - 1)])
        for t in range(h):
            b[:, t] = gammas[t] * heat[:, t, None]
        lo, hi = _limits(mode, comfort_lo, comfort_hi, need_lo, need_hi)
        in_run = grid.k0 + grid.starts < self.timeline.n_steps
        p_max = np.where((heat != 0) & in_run[None, :], self.p_max_kw[:, None], 0.0)
        return [
            Thermal(fleet=self.name, node=self.node, a=a, b_k_per_kw=b, d_k=d,
                    temp_init_c=self.x_c.copy(), p_max_kw=p_max, temp_min_c=lo, temp_max_c=hi,
                    discomfort_cost_cny_per_kh=self.discomfort_cost.copy()),
            FixedProfile(fleet=self.name, node=self.node, p_kw=-grid.mean(base.sum(axis=0))),
        ]

    def _forecast_modes(self, a, gammas, d, t_out_blocks, need_lo, need_hi, comfort_lo, season):
        """The plant's mode and heat per kW in each block (N, H), from the changeover
        along the forecast with the least HVAC power that keeps the band; *a* (N, H, 2, 2),
        *gammas* per block (N, 2) and *d* (N, H, 2) are the blocks' state map."""
        n, h = d.shape[:2]
        cool = self._heat_per_kw(np.full((n, h), COOLING), t_out_blocks, comfort_lo)       # (N, H)
        warm = self._heat_per_kw(np.full((n, h), HEATING), t_out_blocks, comfort_lo)
        x0, x1, mode = self.x_c[:, 0].copy(), self.x_c[:, 1].copy(), self.mode.copy()
        modes, heats = np.empty((n, h), dtype=int), np.empty((n, h))
        zero = np.zeros(n)
        for t in range(h):                      # the 2x2 map written out: einsum's overhead dominates at this size
            at = a[:, t]
            free0 = at[:, 0, 0] * x0 + at[:, 0, 1] * x1 + d[:, t, 0]
            free1 = at[:, 1, 0] * x0 + at[:, 1, 1] * x1 + d[:, t, 1]
            mode = self._changeover(mode, free0, need_lo[t], need_hi[t], season[t])
            heat = np.where(mode == COOLING, cool[:, t], np.where(mode == HEATING, warm[:, t], zero))
            b0, b1 = gammas[t][:, 0] * heat, gammas[t][:, 1] * heat
            p = _least_power(free0, b0, need_lo[t], need_hi[t], self.p_max_kw)
            x0, x1 = free0 + b0 * p, free1 + b1 * p
            modes[:, t], heats[:, t] = mode, heat
        return modes, heats

    def _block_band(self, grid: HorizonGrid, lo_steps: np.ndarray, hi_steps: np.ndarray):
        """A band at each block's end: the tightest of the steps in the block and of
        the step that starts at its end, so that a coarse block ending when occupancy
        begins already asks for comfort. [degC], (H,)"""
        ks = grid.k0 + np.arange(grid.n_steps + 1)
        ks = np.minimum(ks, len(lo_steps) - 1)
        lo, hi = lo_steps[ks], hi_steps[ks]
        starts = grid.starts
        ends = starts + grid.steps_per_block          # index of the step starting at the block end
        lo_b = np.array([lo[a:b + 1].max() for a, b in zip(starts, ends, strict=True)])
        hi_b = np.array([hi[a:b + 1].min() for a, b in zip(starts, ends, strict=True)])
        return lo_b, hi_b

    def state(self) -> dict[str, float]:
        return {"p_hvac_kw": float(self.p_hvac_kw.sum()), "p_base_kw": float(self.p_base_kw.sum()),
                "temp_mean_c": float(self.temp_c.mean()), "temp_max_c": float(self.temp_c.max()),
                "temp_mass_mean_c": float(self.x_c[:, 1].mean()),
                "comfort_violation_kh": self._too_hot_kh + self._too_cold_kh,
                "comfort_too_hot_kh": self._too_hot_kh, "comfort_too_cold_kh": self._too_cold_kh,
                "comfort_lo_c": float(self._calendar.need_lo[self._k]),
                "comfort_hi_c": float(self._calendar.need_hi[self._k])}

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
        self.season = np.where(np.isin(month, p.cooling_months), COOLING,
                               np.where(np.isin(month, p.heating_months), HEATING, OFF))
        cool, heat = self.season == COOLING, self.season == HEATING
        sp_hi, sp_lo = p.cooling_setpoint_c, p.heating_setpoint_c
        # Comfort band while occupied: below the cooling setpoint in the cooling
        # season, above the heating one in the heating season, between them otherwise.
        self.comfort_lo = np.where(cool, sp_hi - p.comfort_band_k, sp_lo)
        self.comfort_hi = np.where(heat, sp_lo + p.comfort_band_k, sp_hi)
        # The band the plant keeps: comfort while occupied, the setbacks otherwise.
        self.need_lo = np.where(self.occupied, self.comfort_lo, p.setback_min_c)
        self.need_hi = np.where(self.occupied, self.comfort_hi, p.setback_max_c)
        # The uncontrolled thermostat's target in each mode: the band's edge while
        # conditioned (from the morning start), the setback otherwise.
        self.thermostat_cool = np.where(self.conditioned, self.comfort_hi, p.setback_max_c)
        self.thermostat_heat = np.where(self.conditioned, self.comfort_lo, p.setback_min_c)


class DailyAR1:
    """Per-asset AR(1) noise generated one day at a time, in time order.

    ``x[k+1] = phi x[k] + sqrt(1 - phi^2) sigma w[k]`` (stationary std *sigma*).
    Days are generated in order from one dedicated generator, so a step's value
    does not depend on which steps were asked for first, and only the days
    around the current step are kept (memory O(N x day), not O(N x run)).
    """

    def __init__(self, rng: np.random.Generator, n: int, phi: float, sigma: float, steps_per_day: int):
        self.rng, self.n, self.phi, self.sigma, self.day_steps = rng, n, phi, sigma, steps_per_day
        self._days: dict[int, np.ndarray] = {}
        self._last_day, self._last = -1, rng.normal(0.0, sigma, n)

    def _generate_through(self, day: int) -> None:
        innov_std = self.sigma * np.sqrt(1.0 - self.phi ** 2)
        while self._last_day < day:
            w = self.rng.normal(0.0, innov_std, (self.n, self.day_steps))
            out = np.empty((self.n, self.day_steps))
            x = self._last
            for j in range(self.day_steps):
                x = self.phi * x + w[:, j]
                out[:, j] = x
            self._last_day += 1
            self._last = x
            self._days[self._last_day] = out

    def values(self, ks: np.ndarray) -> np.ndarray:
        """Noise at steps *ks*, shape (N, len(ks)).  Days before the day before
        the earliest step asked for are forgotten, so steps must not go back
        more than a day (the engine always moves forward)."""
        ks = np.asarray(ks, dtype=np.int64)
        days = ks // self.day_steps
        first = int(days.min(initial=0))
        self._generate_through(int(days.max(initial=0)))
        if first not in self._days:
            raise IndexError("noise of a day long past was requested (steps must move forward in time)")
        out = np.empty((self.n, len(ks)))
        for d in np.unique(days):
            mask = days == d
            out[:, mask] = self._days[int(d)][:, ks[mask] % self.day_steps]
        for old in [d for d in self._days if d < first - 1]:
            del self._days[old]
        return out
