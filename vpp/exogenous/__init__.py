"""Exogenous inputs: weather, tariff, carbon intensity, and forecasts of them.

``build_exogenous`` and ``Forecaster`` are imported on first use, so that
reading a scenario (which needs only the config models) does not import
pvlib and scipy.
"""

from vpp.exogenous.config import (
    CarbonConfig,
    ForecastConfig,
    SiteConfig,
    TariffConfig,
    WeatherConfig,
    WindRegime,
)
from vpp.exogenous.series import Exogenous

__all__ = [
    "CarbonConfig",
    "ForecastConfig",
    "SiteConfig",
    "TariffConfig",
    "WeatherConfig",
    "WindRegime",
    "Exogenous",
    "build_exogenous",
    "Forecaster",
]

_LAZY = {"build_exogenous": "vpp.exogenous.build", "Forecaster": "vpp.exogenous.forecast"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
