"""Shared fixtures: small scenarios built in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vpp.scenario import read_scenario_dict, scenario_from_dict

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


BALANCE_TOL_KW = 1e-6


def check_balance(res):
    info = res.fleet_info
    p = res.power()
    for node in res.node_info.index:
        at = info.index[info["node"] == node]
        net = p[list(at)].sum(axis=1)
        imp = res.nodes[(node, "grid_import_kw")]
        exp = res.nodes[(node, "grid_export_kw")]
        scale = max(1.0, float(np.abs(p[list(at)]).to_numpy().max(initial=0.0)))
        np.testing.assert_allclose(net + imp - exp, 0.0, atol=BALANCE_TOL_KW * scale)
        assert (imp >= 0).all() and (exp >= 0).all() and ((imp == 0) | (exp == 0)).all()
        lim = res.node_info.loc[node, "export_limit_kw"]
        np.testing.assert_allclose(res.nodes[(node, "export_violation_kw")], np.maximum(exp - lim, 0.0), atol=1e-9)
    for fleet in info.index[info["curtailable"].astype(bool)]:
        avail, out = res.fleets[(fleet, "p_available_kw")], res.fleets[(fleet, "p_kw")]
        assert (out >= -1e-9).all() and (out <= avail + 1e-6).all()
