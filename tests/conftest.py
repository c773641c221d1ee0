"""Shared fixtures: small scenarios built in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpp.scenario import read_scenario_dict, scenario_from_dict
from vpp.testing import check_balance  # noqa: F401  (the tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "scenarios" / "small_district.toml"
DEFAULT = ROOT / "scenarios" / "shanghai_lingang.toml"


def scenario(data: dict, base: Path = SMALL):
    """A Scenario from the small district with *data* merged over it."""
    from vpp.scenario import merge

    return scenario_from_dict(merge(read_scenario_dict(base), data), "<test>", base.parent)


@pytest.fixture
def small_path() -> Path:
    return SMALL


@pytest.fixture(autouse=True)
def _fresh_baselines():
    """Each test simulates its own baselines: a test that breaks a fleet on purpose
    must not be handed a baseline an earlier test ran with the working code."""
    from vpp import api

    api.clear_cache()
    yield
