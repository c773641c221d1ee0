"""Exogenous inputs: weather, tariff, carbon intensity, and forecasts of them."""

from vpp.exogenous.config import CarbonConfig, ForecastConfig, SiteConfig, TariffConfig, WeatherConfig, WindRegime
from vpp.exogenous.series import Exogenous

__all__ = ["CarbonConfig", "ForecastConfig", "SiteConfig", "TariffConfig", "WeatherConfig", "WindRegime", "Exogenous"]
