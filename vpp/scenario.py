"""Scenario files: TOML validated by pydantic, with one-line errors.

The vocabulary layer validates a scenario's *structure* (time, nodes,
fleets' names/nodes/counts, exogenous sections, dispatch and strategy
sections).  Each fleet's ``params`` table and each strategy's ``options``
are validated by the model its asset type or strategy registers; the API
does that (see :func:`vpp.api.validate`).

A scenario may ``extends = "base.toml"``: tables merge key by key, and
arrays of tables (``nodes``, ``fleets``) merge entry by entry on ``name``,
so a sweep is "base + a few changes".
"""

from __future__ import annotations

import datetime as dt
import errno
import re
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from vpp.dr import BASELINES, SettlementBand
from vpp.errors import FieldError, ScenarioError, field_path
from vpp.exogenous.config import CarbonConfig, ForecastConfig, SiteConfig, TariffConfig, WeatherConfig
from vpp.market import PriceShape
from vpp.params import InputModel, Limit, ranged
from vpp.timeline import Timeline

__all__ = [
    "Scenario",
    "TimeConfig",
    "NodeConfig",
    "FleetConfig",
    "DispatchConfig",
    "GridConfig",
    "StrategyConfig",
    "OutputConfig",
    "load_scenario",
    "read_scenario_dict",
    "read_toml",
    "scenario_from_dict",
    "validation_error",
]


class _Section(InputModel):
    """No unknown keys, no NaN or infinity (except :data:`~vpp.params.Limit`), no boolean for a number."""


class TimeConfig(_Section):
    """Simulated period. ``start``/``end`` are local times in ``timezone``
    (or carry their own UTC offset)."""

    start: dt.datetime
    """First simulated instant: a local time in ``timezone`` unless it carries its own UTC offset (a local
    time that a daylight-saving change skips or repeats is refused)."""
    end: dt.datetime
    """End of the run, excluded (the last step starts one step before it): a whole number of steps after
    ``start``, read like ``start``."""
    step_min: int = Field(15, gt=0, le=1440)
    """Simulation step; every series is the mean over the step that starts at its timestamp.  It must
    divide a day (default 15 min, assumption)."""
    timezone: str = "Asia/Shanghai"
    """IANA time zone of the scenario's local times (``start``, ``end``, DR calls, CSV rows without an
    offset) and of the hours of the carbon profile, the market and the DR generator, and of the demand
    charge's calendar months.  The Shanghai tariff keeps Shanghai's clock; the synthetic weather runs on
    solar time at the site."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as 'Asia/Shanghai')") from None
        return v

    @model_validator(mode="after")
    def _order(self):
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                try:
                    pd.Timestamp(value).tz_localize(self.timezone)
                except ValueError:      # pandas' NonExistentTimeError, AmbiguousTimeError
                    raise FieldError((name,), f"{value.isoformat()} does not exist or is ambiguous in {self.timezone} "
                                     "(a daylight-saving change); give another time or a UTC offset") from None
        if self.start_ts >= self.end_ts:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if (60 * 24) % self.step_min:
            raise ValueError(f"step_min ({self.step_min}) must divide a day")
        if (self.end_ts - self.start_ts).total_seconds() % (60 * self.step_min):
            raise ValueError("the period from start to end must be a whole number of steps")
        return self

    def _ts(self, value: dt.datetime) -> pd.Timestamp:
        ts = pd.Timestamp(value)
        return ts.tz_localize(self.timezone) if ts.tzinfo is None else ts.tz_convert(self.timezone)

    @property
    def start_ts(self) -> pd.Timestamp:
        return self._ts(self.start)

    @property
    def end_ts(self) -> pd.Timestamp:
        return self._ts(self.end)


class NodeConfig(_Section):
    """A grid connection point with its import and export limits.

    ``limits = "hard"`` (default): a breaker; the physics never imports beyond
    the limit (loads are cut, flexible first, and what is cut is reported).
    ``"soft"``: an import the loads cause beyond it is allowed and reported as
    a violation.  Exports are kept within the limit either way (the export
    limiter and the storage guard)."""

    name: str = Field(min_length=1)
    """The node's name, unique among the nodes; fleets name it in ``node`` (a district's nodes get the
    district's name in front)."""
    import_limit_kw: Limit = Field(ge=0)
    """Most the node may import from the upstream grid (``inf``: no limit); ``limits`` says what happens
    beyond it.  The optimizer keeps to it with a penalised slack either way."""
    export_limit_kw: Limit = Field(ge=0)
    """Most the node may export to the upstream grid (``inf``: no limit), held either way: the export
    limiter curtails green sources pro rata and storage setpoints are scaled down."""
    limits: str = Field("hard", pattern="^(hard|soft)$")
    """``"hard"`` (default): the import limit is a breaker, loads are cut to it (their flexible draw
    first) and the cut is reported; ``"soft"``: the import is allowed and reported as a violation."""


class FleetConfig(_Section):
    """A vectorised group of assets of one type at one node.

    ``params`` is validated by the parameter model of ``type`` (see the
    asset registry); here it is only required to be a table.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    """The fleet's name, unique among the fleets (letters, digits, ``_``, ``-``): it labels the fleet's
    results and keys its random stream, so renaming a fleet changes its draws."""
    type: str = Field(min_length=1)
    """Asset type, one of the registered fleet types: ``pv``, ``wind``, ``ev``, ``building``, ``battery``,
    ``industry``, ``datacentre`` or ``tcl``; it sets the model and the ``params`` it takes."""
    node: str = Field(min_length=1)
    """Name of the ``[[nodes]]`` entry the fleet is connected at."""
    count: int = Field(gt=0)
    """Number of assets in the fleet: PV systems, turbines, chargers, buildings, batteries, industrial
    sites or data centres; for ``tcl``, populations of air conditioners. [-]"""
    params: dict[str, Any] = Field(default_factory=dict)
    """The type's parameters, each a number or a distribution drawn once per asset (unset ones take the
    type's defaults); see ``[fleets.params]`` of the type."""


class DispatchConfig(_Section):
    """Rolling-horizon cadence.

    The horizon is ``fine_horizon_h`` at the simulation step, then blocks of
    ``coarse_step_min`` up to ``horizon_h``.
    """

    interval_min: int = Field(60, gt=0)
    """The strategy plans anew every this many minutes; a multiple of ``time.step_min`` (default hourly,
    assumption)."""
    horizon_h: float = Field(24.0, gt=0, le=24 * 14)
    """How far each plan looks ahead, at most two weeks; the exogenous series (CSV files too) must reach
    this far past ``time.end`` (default a day, assumption)."""
    fine_horizon_h: float = Field(1.0, gt=0)
    """The horizon's first part, planned at the simulation step; it covers at least one dispatch
    interval and at most ``horizon_h`` (default the first hour, assumption)."""
    coarse_step_min: int = Field(60, gt=0)
    """Block length of the horizon after its fine part (coarse blocks keep a window's solve short); a
    multiple of ``time.step_min`` (default hourly, assumption)."""
    settlement: str = Field("vpp", pattern="^(vpp|node)$")
    """``"vpp"`` (default, our choice): the VPP settles its net exchange as one account, its nodes
    netting against each other; ``"node"``: each node is billed on its own import and export (and its
    own demand charge)."""


class GridConfig(_Section):
    """Limits on the VPP's net exchange with the upstream grid (contractual; the
    optimizer respects them with penalised slacks, and KPIs count violations)."""

    vpp_import_limit_kw: Limit | None = Field(None, ge=0)
    """Most the VPP may import in net over all its nodes (unset or ``inf``: no limit).  Soft: strategies
    are given it (the optimizer keeps to it with a penalised slack), the physics does not enforce it, and
    ``vpp_limit_violation_kwh`` counts the excess."""
    vpp_export_limit_kw: Limit | None = Field(None, ge=0)
    """Most the VPP may export in net (unset or ``inf``: no limit); soft, as ``vpp_import_limit_kw``."""
    ramp_limit_kw_per_h: Limit | None = Field(None, gt=0)
    """Most the VPP's net import may change per hour from one step to the next (unset or ``inf``: no
    limit); soft, counted by ``ramp_limit_violation_kwh``."""


def _known_baseline(v: str) -> str:
    if v not in BASELINES:
        raise ValueError(f"unknown baseline {v!r} (known: {', '.join(sorted(BASELINES))})")
    return v


BaselineName = Annotated[str, AfterValidator(_known_baseline)]   # a key of vpp.dr.BASELINES


class DREventConfig(_Section):
    """One demand-response call (:mod:`vpp.dr`).  Times are local in
    ``time.timezone`` (or carry their own offset); defaults are labelled in the README."""

    name: str = Field(min_length=1)
    """The call's name, unique among the calls; it labels the call's row in ``tables["dr_events"]``."""
    kind: str = Field(pattern="^(peak_shaving|valley_filling)$")
    """``"peak_shaving"`` (削峰) asks the VPP to import less than its baseline over the window;
    ``"valley_filling"`` (填谷) to import more."""
    start: dt.datetime
    """Start of the call's window: on a step of the run, inside it."""
    end: dt.datetime
    """End of the call's window, excluded: after ``start``, on a step of the run, inside it."""
    notice: dt.datetime | None = None          # when the call is announced; default notice_h before start
    # upper bounds are plausibility limits: two weeks' notice, 100 GW, 100 CNY/kWh
    notice_h: float = Field(24.0, ge=0, le=336)
    """Hours from the announcement to ``start`` when ``notice`` is unset: 24 for a day-ahead call
    (default, assumption), 0.25 for a fast one; at most two weeks."""
    capacity_kw: float = Field(gt=0, le=1e8)            # requested (bid) change of the VPP's import
    price_cny_per_kwh: float = Field(1.5, ge=0, le=100)
    """Compensation per kWh delivered; default 1.5, the day-ahead DR price of Hainan's 2025 draft as a
    proxy (Shanghai's was not found; assumption, docs/SOURCES.md)."""
    baseline: BaselineName = "last5_working_days"
    """The customer baseline delivery is settled against: ``caiso_10in10``, ``top5_of_10`` (Beijing),
    ``last5_working_days`` (Jiangsu; default, assumption) or ``pre_event`` (the 15 minutes before)."""
    # the settlement band; defaults from vpp.dr.SettlementBand, the one place they are stated
    paid_min_frac: float = Field(SettlementBand.paid_min_frac, ge=0)
    """Below this ratio of delivered to bid energy nothing is paid (default 0.5; assumption shaped on
    provincial invitation-DR rules)."""
    paid_max_frac: float = Field(SettlementBand.paid_max_frac, gt=0, le=10)
    """Delivery above this ratio of the bid is not paid (default 1.2; assumption, as ``paid_min_frac``)."""
    penalty_floor_frac: float = Field(SettlementBand.penalty_floor_frac, ge=0, le=10)
    """Below this ratio of the bid the shortfall to it costs ``penalty_cny_per_kwh`` (default 0: no
    penalty; assumption)."""
    penalty_cny_per_kwh: float = Field(SettlementBand.penalty_cny_per_kwh, ge=0, le=100)
    """Price of the shortfall below ``penalty_floor_frac`` (default 0, assumption)."""

    @model_validator(mode="after")
    def _band(self):
        if self.paid_min_frac > self.paid_max_frac:
            raise FieldError(("paid_min_frac",), f"{self.paid_min_frac} is above paid_max_frac ({self.paid_max_frac})")
        if self.end <= self.start:
            raise FieldError(("end",), f"{self.end} is not after start ({self.start})")
        return self


class DRGeneratorConfig(_Section):
    """Seeded demand-response calls (every default an assumption, labelled in the README).

    Peak shaving: each working day whose highest air temperature reaches
    ``hot_day_c`` gets a call with probability ``peak_call_prob``, from
    ``peak_start_hour`` for ``window_h``.  Valley filling: each non-working day
    whose midday (11-14 h) mean irradiance reaches ``sunny_ghi_w_m2`` gets a call
    with probability ``valley_call_prob``, from ``valley_start_hour``.  Calls
    are announced at ``notice_hour`` the day before, for ``capacity_kw``."""

    capacity_kw: float = Field(gt=0, le=1e8)            # the bounds of [[dr.events]], which it makes
    """Requested change of the VPP's import in every generated call (settled in the default band of
    ``[[dr.events]]``)."""
    price_cny_per_kwh: float = Field(1.5, ge=0, le=100)
    """Compensation per kWh delivered in generated calls (default 1.5, as ``[[dr.events]]``; assumption)."""
    baseline: BaselineName = "last5_working_days"
    """Customer baseline of generated calls, named as in ``[[dr.events]]`` (default Jiangsu's, assumption)."""
    hot_day_c: float = Field(35.0, ge=-60, le=60)
    """A working day whose highest air temperature reaches this may get a peak-shaving call (default
    35 °C, assumption)."""
    peak_call_prob: float = Field(0.5, ge=0, le=1)
    """Chance that a hot working day gets a call; 0.5 gives about 20 calls in a Shanghai summer, as
    reported for 2024 (docs/SOURCES.md, secondary; the value an assumption). [-]"""
    peak_start_hour: int = Field(13, ge=0, le=23)
    """Local hour at which generated peak-shaving calls start (default 13:00, assumption)."""
    sunny_ghi_w_m2: float = Field(700.0, ge=0)
    """A non-working day whose mean irradiance from 11 to 14 h reaches this may get a valley-filling call
    (default 700, assumption)."""
    valley_call_prob: float = Field(0.0, ge=0, le=1)
    """Chance that a sunny non-working day gets a valley-filling call (default 0: none, assumption). [-]"""
    valley_start_hour: int = Field(11, ge=0, le=23)
    """Local hour at which generated valley-filling calls start (default 11:00, assumption)."""
    window_h: int = Field(2, ge=1, le=12)
    """Length of every generated call, in whole hours (default 2, assumption)."""
    notice_hour: int = Field(16, ge=0, le=23)
    """Local hour of the day before a generated call at which it is announced (default 16:00, assumption)."""


class DRConfig(_Section):
    """Demand-response calls and how their baselines get a history.

    Calls are listed (``events``), read from ``events_csv`` (one per row, the
    same fields as columns; relative to the scenario file) and/or drawn from
    the weather by a seeded ``generator`` (on days without a listed call).

    ``history = "baseline"`` simulates ``history_days`` before the run with the
    baseline strategy (the same scenario, its own draws) for the baselines'
    prior days; ``"strategy"`` simulates them with each run's own strategy (a
    VPP's meter history shows its own operation); ``"run"`` uses the run's own
    metered days only (the events must come late enough).  The true
    counterfactual a call's delivery is measured against is the baseline
    strategy's run on the same draws (``counterfactual = "baseline"``), or each
    strategy's own run without the calls (``"strategy"``, one more run each).
    ``holidays``/``workdays`` extend China's statutory calendar
    (:data:`vpp.dr.CN_HOLIDAYS`)."""

    events: list[DREventConfig] = Field(default_factory=list)
    """The calls listed in the file; see [[dr.events]]."""
    events_csv: str | None = None          # more calls, one per row, columns as in [[dr.events]]
    generator: DRGeneratorConfig | None = None
    """Calls drawn from the run's weather (unset: none); see [dr.generator]."""
    history: str = Field("baseline", pattern="^(baseline|strategy|run)$")
    """Where the baselines' prior days come from: ``"baseline"`` (default) simulates ``history_days``
    before the run with the baseline strategy, ``"strategy"`` with each run's own strategy; ``"run"``
    uses the run's own metered days only."""
    counterfactual: str = Field("baseline", pattern="^(baseline|strategy)$")
    """What true delivery is measured against: ``"baseline"`` (default), the baseline strategy's run on
    the same draws; ``"strategy"``, each strategy's own run without the calls (one more run each)."""
    history_days: int = Field(21, ge=1, le=366)
    """Days simulated before the run when ``history`` is ``"baseline"`` or ``"strategy"``; a call needs
    enough prior days of its kind without calls (10 for ``caiso_10in10`` and ``top5_of_10``, 5 for
    ``last5_working_days``).  Default 21 (assumption)."""
    holidays: list[dt.date] = Field(default_factory=list)
    """Non-working days added to China's statutory holidays (built in for 2024 and 2025, official)."""
    workdays: list[dt.date] = Field(default_factory=list)
    """Working days added to the built-in make-up working days (调休, 2024 and 2025), e.g. a weekend day
    worked."""


class MarketConfig(_Section):
    """How the VPP buys and sells energy: the tariff (default) or a two-settlement
    market (:mod:`vpp.market`).  In the market the VPP commits its net import for
    each step of day D at ``gate_closure_hour`` on D-1 (the first day at the
    run's start); the position is settled at day-ahead prices, deviations at
    real-time prices plus ``penalty_cny_per_kwh`` beyond ``tolerance_frac`` of
    the position.  Prices are read from ``price_csv`` (relative to the scenario
    file) or generated from the weather (:class:`vpp.market.PriceShape`); every
    default is an assumption, labelled in the README."""

    mode: str = Field("tariff", pattern="^(tariff|two_settlement)$")
    """``"tariff"`` (default): energy is bought and sold at the ``[tariff]`` prices; ``"two_settlement"``:
    at this section's day-ahead and real-time prices (the tariff's demand charge stays)."""
    gate_closure_hour: int = Field(12, ge=0, le=23)
    """Local hour on D-1, so always before delivery, at which day D's position is committed (default
    12:00; assumption, Shanghai's was not found)."""
    tolerance_frac: float = Field(0.1, ge=0, le=10)
    """Deviations within this share of the position pay only the real-time price; beyond it,
    ``penalty_cny_per_kwh`` more (default 0.1; assumption, Shanghai's was not found)."""
    penalty_cny_per_kwh: float = Field(0.1, ge=0, le=20)
    """Penalty per kWh of deviation beyond the tolerance band (default 0.1; assumption, Shanghai's was
    not found)."""
    # the generated prices' shape; defaults from vpp.market.PriceShape, the one place they are stated;
    # upper bounds are plausibility limits (a price level of 20 CNY/kWh is 50 times Shanghai's benchmark)
    mean_cny_per_kwh: float = Field(PriceShape.mean_cny_per_kwh, gt=0, le=20)
    """Level of the generated day-ahead price; default Shanghai's coal-fired benchmark price, 0.4155
    (docs/SOURCES.md; its use as the level an assumption)."""
    evening_peak_frac: float = Field(PriceShape.evening_peak_frac, ge=0, le=10)
    """Rise of the generated day-ahead price from 18 to 22 h (ramps of an hour either side), as a share
    of the level (default 0.5, assumption)."""
    solar_dip_frac: float = Field(PriceShape.solar_dip_frac, ge=0, le=10)
    """Fall of the generated day-ahead price at 1,000 W/m² of irradiance, as a share of the level; above
    1 plus the evening term a sunny midday price goes negative (default 0.9, assumption)."""
    heat_frac_per_k: float = Field(PriceShape.heat_frac_per_k, ge=0, le=1)
    """Rise of the generated day-ahead price per kelvin of air temperature above 26 °C (cooling load), as
    a share of the level (default 0.03, assumption)."""
    rt_noise_frac: float = Field(PriceShape.rt_noise_frac, ge=0, le=5)
    """Standard deviation of the generated real-time price around the day-ahead price, as a share of
    the level (default 0.15, assumption)."""
    rt_noise_h: float = Field(PriceShape.rt_noise_h, gt=0, le=168)
    """Correlation time of the real-time price's AR(1) deviation (default 2 h, assumption)."""
    price_csv: str | None = None        # da_cny_per_kwh (and rt_cny_per_kwh) per time, instead of generated

    @model_validator(mode="after")
    def _prices_only_in_the_market(self):
        if self.price_csv is not None and self.mode != "two_settlement":
            raise FieldError(("price_csv",), 'is read only with mode = "two_settlement"; the tariff prices energy '
                                              'in mode = "tariff"')
        return self


class StrategyConfig(_Section):
    """Which strategy dispatches, and its options (validated by the strategy)."""

    name: str = "source_load_interaction"
    """The strategy that dispatches: ``source_follows_load`` (the uncontrolled baseline),
    ``source_load_interaction`` (default, the centralised optimizer), ``virtual_battery``, ``rule_based``
    or ``price_signal``; ``--strategy`` on the command line overrides it."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Options of the strategy ``name``; see ``[strategy.options]`` of that strategy.  Another strategy
    run on the scenario (``--strategy``, ``compare``) takes its own defaults."""


class LinkConfig(_Section):
    """One fleet's own network, overriding ``[comms]``'s values it sets (batteries on fibre,
    home chargers on a cellular network)."""

    loss_prob: float | None = Field(None, ge=0, le=1)
    """As ``[comms] loss_prob``, for this fleet (default: the network's). [-]"""
    latency_s: ranged(ge=0, le=86_400) | None = None
    """As ``[comms] latency_s``, for this fleet (default: the network's). [s]"""
    timeout_min: float | None = Field(None, gt=0, le=10_080)
    """As ``[comms] timeout_min``, for this fleet (default: the network's). [min]"""


class CommsConfig(_Section):
    """The network between the dispatcher and the assets (:mod:`vpp.comms`): setpoint
    messages lost or delayed, assets holding their last setpoint and falling back to
    their baseline after a silence.  The defaults are a perfect network."""

    loss_prob: float = Field(0.0, ge=0, le=1)
    """Probability that the message carrying one setpoint row's schedule (an asset, or a
    controllable part of one) for the next interval is lost (default 0: none). [-]"""
    latency_s: ranged(ge=0, le=86_400) = 0.0
    """Delivery delay of each message, a number or a distribution drawn per message; a
    message arriving in the first half of a step governs that step (default 0). [s]"""
    timeout_min: float = Field(60.0, gt=0, le=10_080)
    """An asset that has heard nothing for this long falls back to its uncontrolled
    baseline until a message arrives; before that it holds its last setpoint (default
    60 min, an assumption: one hour of holding, four 15-minute steps). [min]"""
    fleets: list[str] = Field(default_factory=list)
    """The fleets whose setpoints cross this network; empty (the default): every fleet."""
    per_fleet: dict[str, LinkConfig] = Field(default_factory=dict)
    """Values of the network for one fleet by its name, overriding the ones above; a fleet named
    here crosses the network even if ``fleets`` leaves it out (default: none)."""
    telemetry_delay_min: float = Field(0.0, ge=0, le=1440)
    """Age of the fleets' states the strategy plans from: it sees every fleet as it was this long
    before each decision (default 0: as it is); a multiple of the step is exact, others round to
    the nearest step. [min]"""

    def link(self, fleet: str) -> CommsConfig:
        """The network as *fleet*'s messages see it: its ``per_fleet`` values over the others."""
        own = self.per_fleet.get(fleet)
        if own is None:
            return self
        return self.model_copy(update={k: v for k, v in own.model_dump().items() if v is not None})

    def crosses(self, fleet: str) -> bool:
        """Whether *fleet*'s setpoints cross this network."""
        return not self.fleets or fleet in self.fleets or fleet in self.per_fleet

    @property
    def perfect(self) -> bool:
        """Whether every message arrives at once (then a run is the same as without ``[comms]``)."""
        return all(c.loss_prob == 0 and c.latency_s == 0
                   for c in (self, *(self.link(name) for name in self.per_fleet)))


class OutageConfig(_Section):
    """Random outages of every asset of one fleet (:mod:`vpp.outages`): each asset alternates
    between working and down periods of exponential length, drawn from the scenario's seed."""

    mtbf_h: float = Field(gt=0, le=1e6)
    """Mean time between failures of one asset (the mean working period). [h]"""
    mttr_h: float = Field(ge=0.25, le=8760)
    """Mean time to repair (the mean down period); at least 15 minutes, as for wind turbines. [h]"""


class OutputConfig(_Section):
    """What to record beyond per-fleet and per-node aggregates."""

    per_asset: list[str] = Field(default_factory=list)
    """Names of the fleets whose power is also recorded asset by asset (``Results.assets``; default
    none)."""


class Scenario(_Section):
    """A whole scenario. See ``scenarios/shanghai_lingang.toml`` for an example."""

    name: str = Field(min_length=1)
    """The scenario's title, shown in results, summaries and ``vpp validate``."""
    description: str = ""
    """Free text about the scenario; the simulation does not use it."""
    seed: int = Field(0, ge=0)
    """The run's one seed: the weather, forecast errors, each fleet, generated prices and DR calls draw
    from streams of their own derived from it; a sweep's seeds replace it. [-]"""
    time: TimeConfig
    """The simulated period and step; see [time]."""
    site: SiteConfig = SiteConfig()
    """Where the VPP is; see [site]."""
    nodes: list[NodeConfig] = Field(min_length=1)
    """The connection points to the upstream grid; see [[nodes]]."""
    fleets: list[FleetConfig] = Field(min_length=1)
    """The groups of assets; see [[fleets]]."""
    weather: WeatherConfig = WeatherConfig()
    """Where the weather comes from; see [weather]."""
    tariff: TariffConfig = TariffConfig()
    """Electricity prices; see [tariff]."""
    carbon: CarbonConfig = CarbonConfig()
    """Carbon intensity of grid electricity; see [carbon]."""
    forecast: ForecastConfig = ForecastConfig()
    """The forecast errors strategies see; see [forecast]."""
    dispatch: DispatchConfig = DispatchConfig()
    """Re-planning cadence and settlement; see [dispatch]."""
    grid: GridConfig = GridConfig()
    """Limits on the VPP's exchange with the upstream grid; see [grid]."""
    strategy: StrategyConfig = StrategyConfig()
    """The dispatch strategy and its options; see [strategy]."""
    dr: DRConfig = DRConfig()
    """Demand-response calls; see [dr]."""
    market: MarketConfig = MarketConfig()
    """Tariff or two-settlement market; see [market]."""
    output: OutputConfig = OutputConfig()
    """What to record besides fleet and node totals; see [output]."""
    comms: CommsConfig = CommsConfig()
    """The network that carries setpoints to the assets; see [comms] (default: perfect)."""
    outages: dict[str, OutageConfig] = Field(default_factory=dict)
    """Random outages per fleet, by the fleet's name; see [outages.NAME] (default: none)."""
    base_dir: Path = Field(Path("."), exclude=True)
    source: str = Field("<scenario>", exclude=True)   # the file it was read from, for messages

    @model_validator(mode="after")
    def _references(self):
        _unique([n.name for n in self.nodes], "nodes")
        _unique([f.name for f in self.fleets], "fleets")
        nodes = {n.name for n in self.nodes}
        for i, f in enumerate(self.fleets):
            if f.node not in nodes:
                known = ", ".join(sorted(nodes))
                raise FieldError(("fleets", i, "node"), f"unknown node {f.node!r} (nodes: {known})")
        fleets = {f.name for f in self.fleets}
        for name in self.outages:
            if name not in fleets:
                raise FieldError(("outages", name), f"unknown fleet {name!r}")
        for i, name in enumerate(self.comms.fleets):
            if name not in fleets:
                raise FieldError(("comms", "fleets", i), f"unknown fleet {name!r}")
        for name in self.comms.per_fleet:
            if name not in fleets:
                raise FieldError(("comms", "per_fleet", name), f"unknown fleet {name!r}")
        for i, name in enumerate(self.output.per_asset):
            if name not in fleets:
                raise FieldError(("output", "per_asset", i), f"unknown fleet {name!r}")
        d, step = self.dispatch, self.time.step_min
        for name in ("interval_min", "coarse_step_min"):
            if getattr(d, name) % step:
                raise FieldError(("dispatch", name), f"must be a multiple of time.step_min ({step})")
        if d.fine_horizon_h * 60 < d.interval_min:
            raise FieldError(("dispatch", "fine_horizon_h"), "must cover at least one dispatch interval")
        if d.horizon_h < d.fine_horizon_h:
            raise FieldError(("dispatch", "horizon_h"), "must be at least fine_horizon_h")
        return self

    @model_validator(mode="after")
    def _dr_events(self):
        self.check_dr_calls(self.dr.events)
        return self

    def check_dr_calls(self, events: list[DREventConfig]) -> None:
        """Raise ``FieldError`` at ``dr.events[i]``'s field for a call outside the
        run, off the step grid, announced after it starts, named twice or
        overlapping another (one call at a time)."""
        _unique([e.name for e in events], "dr.events")
        t, step = self.time, pd.Timedelta(minutes=self.time.step_min)
        spans = []
        for i, e in enumerate(events):
            start, end = t._ts(e.start), t._ts(e.end)
            for name, ts in (("start", start), ("end", end)):
                if not t.start_ts <= ts <= t.end_ts:
                    raise FieldError(("dr", "events", i, name), f"{ts} is outside the run ({t.start_ts} to {t.end_ts})")
                if (ts - t.start_ts) % step:
                    raise FieldError(("dr", "events", i, name), f"{ts} is not on a step of {self.time.step_min} min")
            if e.notice is not None and t._ts(e.notice) > start:
                raise FieldError(("dr", "events", i, "notice"),
                                 f"{t._ts(e.notice)} is after the event starts ({start})")
            spans.append((start, end, i))
        spans.sort()
        for (_, end0, i0), (start1, _, i1) in zip(spans, spans[1:], strict=False):
            if start1 < end0:
                raise FieldError(("dr", "events", i1, "start"),
                                 f"overlaps event {events[i0].name!r}: one call at a time")

    def dr_notice_ts(self, event: DREventConfig) -> pd.Timestamp:
        """When *event* is announced (its ``notice``, else ``notice_h`` before its start)."""
        t = self.time
        if event.notice is not None:
            return t._ts(event.notice)
        return t._ts(event.start) - pd.Timedelta(hours=event.notice_h)

    def timeline(self) -> Timeline:
        """The simulated steps, padded by one dispatch horizon for forecasts."""
        step_s = 60 * self.time.step_min
        pad = int(round(self.dispatch.horizon_h * 3600 / step_s))
        return Timeline(self.time.start_ts, self.time.end_ts, step_s, pad)

    def resolve_path(self, path: str) -> Path:
        """A data file path, relative to the scenario file's folder."""
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p


def _unique(names: list[str], where: str):
    seen = set()
    for i, n in enumerate(names):
        if n in seen:
            raise FieldError((where, i, "name"), f"duplicate name {n!r}")
        seen.add(n)


def validation_error(source: str, err: ValidationError, prefix: tuple = ()) -> ScenarioError:
    """Turn a pydantic error into one :class:`ScenarioError` line.

    Errors of one field that come from the branches of a union (a number *or*
    a distribution table) are reduced to the branch the input was meant for.
    """
    errors = err.errors(include_url=False)
    # A table is a distribution: the number branch of its union is not what was meant.
    errors = [e for e in errors if not _scalar_branch_of_table(e)] or errors
    by_loc: dict[tuple, list[dict]] = {}
    for e in errors:
        by_loc.setdefault(_clean_loc(tuple(e["loc"])), []).append(e)
    loc, group = next(iter(by_loc.items()))
    first = _meant_branch(group)
    ctx_err = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_err, FieldError):
        loc, reason = loc + ctx_err.loc, str(ctx_err)
    else:
        reason = _reason(first)
    n_more = len(by_loc) - 1
    more = f" (and {n_more} more problem{'s' if n_more > 1 else ''})" if n_more else ""
    return ScenarioError(source, field_path(prefix + loc), reason + more)


_SCALAR_TYPES = ("float_type", "float_parsing", "int_type", "int_parsing", "finite_number")


def _scalar_branch_of_table(error: dict) -> bool:
    return isinstance(error.get("input"), dict) and error["type"].startswith(_SCALAR_TYPES)


def _meant_branch(group: list[dict]) -> dict:
    """Of a field's errors, the one from the union branch matching the input's kind."""
    if len(group) == 1:
        return group[0]
    table = isinstance(group[0].get("input"), dict)
    for e in group:
        if table != e["type"].startswith(_SCALAR_TYPES):
            return e
    return group[0]


_UNION_TAGS = {"float", "int", "str", "bool", "uniform", "normal", "lognormal", "choice"}


def _clean_loc(loc: tuple) -> tuple:
    """Drop the union-member tags pydantic puts into locations (``float``,
    ``uniform``, ``tagged-union[...]``), which are not field names."""
    return tuple(p for p in loc if not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p)))


def _reason(error: dict) -> str:
    msg = error["msg"]
    msg = re.sub(r"^Value error, ", "", msg)
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "extra_forbidden":
        return "unknown field (check the spelling)"
    if error["type"] == "union_tag_invalid":
        return "unknown distribution; use one of uniform, normal, lognormal, choice"
    got = error.get("input")
    if error["type"] == "finite_number":
        return f"must be a finite number, got {got!r}"
    if error["type"].endswith("_type") or error["type"].endswith("_parsing"):
        return f"{msg}, got {got!r}"
    return msg


_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


#: A scenario or sweep file is a small text file; the largest shipped is a few kB.
MAX_TOML_BYTES = 10_000_000
_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _check_readable_file(path: Path, what: str) -> None:
    """Refuse what reading would hang on or exhaust memory with: a FIFO, a device, a
    loop of symbolic links, a file far larger than a scenario."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ScenarioError(path, "(file)", "no such file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ScenarioError(path, "(file)", "is a loop of symbolic links") from None
        raise ScenarioError(path, "(file)", f"cannot read: {e.strerror or type(e).__name__}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ScenarioError(path, "(file)", f"is a folder, not a {what} file")
    for test, kind in _NOT_REGULAR:
        if test(st.st_mode):
            raise ScenarioError(path, "(file)", f"is {kind}, not a {what} file")
    if st.st_size > MAX_TOML_BYTES:
        raise ScenarioError(path, "(file)", f"is {st.st_size / 1e6:,.0f} MB; a {what} file is a small text file "
                                            f"(at most {MAX_TOML_BYTES / 1e6:.0f} MB)")


def read_toml(path: Path, what: str = "scenario") -> dict:
    """A TOML file's tables; a missing, unreadable, special or malformed file is a
    one-line :class:`ScenarioError` (with the line and column of a syntax error)."""
    path = Path(path)
    _check_readable_file(path, what)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(path, "(file)", "no such file") from None
    except IsADirectoryError:
        raise ScenarioError(path, "(file)", f"is a folder, not a {what} file") from None
    except (PermissionError, UnicodeDecodeError) as e:
        raise ScenarioError(path, "(file)", f"cannot read: {e.__class__.__name__}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_POS.search(str(e))
        where = f"line {m.group(1)}, column {m.group(2)}" if m else "(syntax)"
        raise ScenarioError(path, where, f"malformed TOML: {_TOML_POS.sub('', str(e)).strip()}") from None


def read_scenario_dict(path: Path, _seen: tuple = ()) -> dict:
    """Read a TOML scenario, following ``extends`` and ``districts``; raise
    :class:`ScenarioError`.

    The parent's tables come first, then each district's nodes and fleets, then
    the file's own tables merge over both (so a city file can resize a
    district's fleet by its prefixed name)."""
    path = Path(path)
    data = read_toml(path)                     # first: it refuses a loop of symbolic links in one line
    if path.resolve() in _seen:
        raise ScenarioError(path, "extends", "circular inheritance")
    seen = _seen + (path.resolve(),)
    parent, districts = data.pop("extends", None), data.pop("districts", None)
    base = {} if parent is None else read_scenario_dict(_linked_file(path, "extends", parent), seen)
    if districts is not None:
        base = _with_districts(path, base, districts, seen)
    return merge(base, data)


def _linked_file(path: Path, field: str, value) -> Path:
    if not isinstance(value, str):
        raise ScenarioError(path, field, "must be a path to another scenario file")
    linked = path.parent / value
    if not linked.is_file():
        raise ScenarioError(path, field, f"no such scenario file: {linked}")
    return linked


_DISTRICT_KEYS = {"name", "scenario"}


def _with_districts(path: Path, base: dict, districts, seen: tuple) -> dict:
    """*base* with every district's nodes and fleets appended, their names (and
    the fleets' nodes) prefixed with the district's name and ``_`` unless they
    start with it already.  Only nodes and fleets come from a district: time,
    weather, tariff, dispatch and the rest are the including file's.  Two entries
    of one name are refused here, since :func:`merge` would fold them into one
    before the scenario's own uniqueness check could see them."""
    if not _named_tables(districts):
        raise ScenarioError(path, "districts", "must be an array of tables with a name and a scenario "
                                               "([[districts]] name = ..., scenario = ...)")
    out = {**base, "nodes": list(base.get("nodes", [])), "fleets": list(base.get("fleets", []))}
    for i, d in enumerate(districts):
        _check_district(path, i, d)
        sub = read_scenario_dict(_linked_file(path, field_path(("districts", i, "scenario")), d["scenario"]), seen)
        named = _prefixer(d["name"])
        out["nodes"] += [{**n, "name": named(n.get("name"))} for n in sub.get("nodes", [])]
        out["fleets"] += [{**f, "name": named(f.get("name")), "node": named(f.get("node"))}
                          for f in sub.get("fleets", [])]
    for key in ("nodes", "fleets"):
        names = [t.get("name") for t in out[key] if isinstance(t, dict)]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ScenarioError(path, "districts", f"two {key} are named {dup!r} once the districts' "
                                                   f"names are prefixed; rename one")
    return out


def _prefixer(district: str):
    """``name -> district_name``, leaving a name that already is the district's
    (``lingang``, ``lingang_city``) as it is."""
    def named(name) -> str:
        name = str(name)
        return name if name == district or name.startswith(district + "_") else f"{district}_{name}"
    return named


def _check_district(path: Path, i: int, d: dict) -> None:
    extra = sorted(set(d) - _DISTRICT_KEYS)
    if extra:
        raise ScenarioError(path, field_path(("districts", i, extra[0])), "unknown field (check the spelling)")
    if "scenario" not in d:
        raise ScenarioError(path, field_path(("districts", i, "scenario")), "required field is missing")
    if not isinstance(d["name"], str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", d["name"]):
        raise ScenarioError(path, field_path(("districts", i, "name")),
                            "must be a non-empty name of letters, digits, _ or -")


def merge(base: dict, override: dict) -> dict:
    """Deep-merge *override* into *base*; arrays of named tables merge by ``name``."""
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge(old, value)
        elif _named_tables(old) and _named_tables(value):
            by_name = {t["name"]: t for t in old}
            for t in value:
                by_name[t["name"]] = merge(by_name[t["name"]], t) if t["name"] in by_name else t
            out[key] = list(by_name.values())
        else:
            out[key] = value
    return out


def _named_tables(x) -> bool:
    return isinstance(x, list) and bool(x) and all(isinstance(t, dict) and "name" in t for t in x)


def scenario_from_dict(data: dict, source: str = "<scenario>", base_dir: Path = Path(".")) -> Scenario:
    """Validate a scenario dict (as read from TOML)."""
    try:
        return Scenario.model_validate({**data, "base_dir": base_dir, "source": str(source)})
    except ValidationError as e:
        raise validation_error(source, e) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate the structure of a scenario file.

    Raises
    ------
    ScenarioError
        With the file that holds the mistake (a parent's, for a field the
        ``extends`` chain set there), the field path and the reason, on one line.
    """
    path = Path(path)
    data = read_scenario_dict(path)
    try:
        return scenario_from_dict(data, str(path), path.parent)
    except ScenarioError as e:
        raise attribute_error(e, path, data) from None


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _keyed(field: str, merged: dict) -> list | None:
    """A field path of the merged scenario with array indices turned into names
    (``fleets[4].params.x`` -> ``["fleets", ("name", "battery"), "params", "x"]``)."""
    keyed, node = [], merged
    for name, index in _PATH_PART.findall(field):
        if index:
            if not isinstance(node, list) or int(index) >= len(node) or not isinstance(node[int(index)], dict):
                return None
            node = node[int(index)]
            if "name" not in node:
                return None
            keyed.append(("name", node["name"]))
        else:
            if not isinstance(node, dict):
                return None
            keyed.append(name)
            node = node.get(name)
    return keyed


def _sets(raw: dict, keyed: list) -> bool:
    """Whether a file's own tables (before ``extends``) set the path *keyed*."""
    node = raw
    for part in keyed:
        if isinstance(part, tuple):
            match = [t for t in node if isinstance(t, dict) and t.get("name") == part[1]] if isinstance(node, list) \
                else []
            if not match:
                return False
            node = match[0]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def attribute_error(error: ScenarioError, path: Path, merged: dict) -> ScenarioError:
    """*error* about the scenario *path*, re-addressed to the file of its ``extends``
    chain that sets the field (the most derived one); unchanged when the field is
    the file's own, unset, or from a district."""
    path = Path(path)
    if error.source != str(path):
        return error
    keyed = _keyed(error.field, merged)
    if not keyed:
        return error
    chain, current = [], path
    while current is not None and len(chain) < 64:
        try:
            raw = tomllib.loads(current.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return error
        chain.append((current, raw))
        parent = raw.get("extends")
        current = current.parent / parent if isinstance(parent, str) else None
    for file, raw in chain:
        if _sets(raw, keyed):
            return error if file == path else type(error)(str(file), error.field, error.reason)
    return error
