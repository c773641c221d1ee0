"""Build the actual exogenous series of a scenario on its padded timeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vpp.errors import ScenarioError
from vpp.exogenous.carbon import carbon_profile
from vpp.exogenous.csvsource import read_carbon_csv, read_tariff_csv, read_weather_csv, weather_from_table
from vpp.exogenous.series import Exogenous
from vpp.exogenous.tariff import shanghai_tou_prices
from vpp.exogenous.weather import solar_geometry, synthetic_weather
from vpp.exogenous.weatherfiles import WEATHER_FILE_KINDS, read_weather_file_table

FILE_SOURCES = ("csv", *WEATHER_FILE_KINDS)    # sources read from a file named by ``path``

if TYPE_CHECKING:  # vpp.scenario imports this package's config
    from vpp.scenario import Scenario

__all__ = ["build_exogenous"]


def build_exogenous(scenario: Scenario) -> Exogenous:
    """Weather, prices and carbon intensity for *scenario*, actuals per step.

    Parameters
    ----------
    scenario : vpp.scenario.Scenario
        Its ``site``, ``weather``, ``tariff``, ``carbon`` sections and seed;
        CSV paths are resolved relative to the scenario file.

    Returns
    -------
    Exogenous
        On ``scenario.timeline().padded_index`` (the simulated steps plus one
        dispatch horizon).

    Raises
    ------
    ScenarioError
        When a CSV file is missing or invalid (one line: file, column, reason).
    """
    for section in ("weather", "tariff", "carbon"):
        cfg = getattr(scenario, section)
        if cfg.source in FILE_SOURCES and not scenario.resolve_path(cfg.path).is_file():
            raise ScenarioError(scenario.source, f"{section}.path",
                                f"no such file: {scenario.resolve_path(cfg.path)}")
    tl = scenario.timeline()
    index, step_s = tl.padded_index, tl.step_s
    site = scenario.site
    ref_height_m = {name: r.ref_height_m for name, r in scenario.weather.wind_regimes.items()}
    if scenario.weather.source == "csv":
        solar = solar_geometry(index, step_s, site)
        weather = read_weather_csv(
            scenario.resolve_path(scenario.weather.path), index, step_s, scenario.weather, solar
        )
    elif scenario.weather.source in WEATHER_FILE_KINDS:
        solar = solar_geometry(index, step_s, site)
        table, ref_height_m = read_weather_file_table(
            scenario.weather.source, scenario.resolve_path(scenario.weather.path), index,
            scenario.weather.wind_regimes, site.longitude_deg,
        )
        weather = weather_from_table(table, index, step_s, scenario.weather, solar)
    else:
        weather = synthetic_weather(index, step_s, site, scenario.weather, scenario.seed)
    if scenario.tariff.source == "csv":
        price_import, price_export = read_tariff_csv(
            scenario.resolve_path(scenario.tariff.path), index, step_s, scenario.tariff
        )
    else:
        price_import, price_export = shanghai_tou_prices(index, scenario.tariff)
    if scenario.carbon.source == "csv":
        co2 = read_carbon_csv(scenario.resolve_path(scenario.carbon.path), index, step_s)
    else:
        co2 = carbon_profile(index, step_s, scenario.carbon)
    sun = weather.solar
    return Exogenous(
        index=index,
        step_h=tl.dt_h,
        latitude_deg=site.latitude_deg,
        longitude_deg=site.longitude_deg,
        altitude_m=site.altitude_m,
        solar_zenith_deg=sun.zenith_deg,
        solar_apparent_zenith_deg=sun.apparent_zenith_deg,
        solar_azimuth_deg=sun.azimuth_deg,
        dni_extra_w_m2=sun.dni_extra_w_m2,
        ghi_clear_w_m2=sun.ghi_clear_w_m2,
        ghi_w_m2=weather.ghi_w_m2,
        dni_w_m2=weather.dni_w_m2,
        dhi_w_m2=weather.dhi_w_m2,
        temp_air_c=weather.temp_air_c,
        pressure_pa=weather.pressure_pa,
        wind_speed_m_s=weather.wind_speed_m_s,
        wind_ref_height_m=ref_height_m,
        price_import_cny_per_kwh=np.asarray(price_import, float),
        price_export_cny_per_kwh=np.asarray(price_export, float),
        co2_kg_per_kwh=np.asarray(co2, float),
        demand_charge_cny_per_kw_month=scenario.tariff.demand_charge_cny_per_kw_month,
    )
