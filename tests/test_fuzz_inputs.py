"""Fuzzing scenario dictionaries: whatever a file holds, `validate` accepts it or refuses it
in one line (an InputError): never a traceback of another kind, never a hang."""

from __future__ import annotations

import copy
import os
import signal

import pytest
from conftest import SMALL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vpp
from vpp.scenario import read_scenario_dict, scenario_from_dict

BASE = read_scenario_dict(SMALL)
# the tables the small district leaves at their defaults, so that edits reach them too
BASE["comms"] = {"loss_prob": 0.1, "latency_s": {"dist": "uniform", "low": 0.0, "high": 120.0}, "timeout_min": 60.0,
                 "fleets": ["battery"], "telemetry_delay_min": 15.0,
                 "per_fleet": {"home_chargers": {"loss_prob": 0.2, "latency_s": 120.0, "timeout_min": 30.0}}}
BASE["outages"] = {"battery": {"mtbf_h": 2000.0, "mttr_h": 24.0}, "offices": {"mtbf_h": 4000.0, "mttr_h": 48.0}}
BASE.setdefault("forecast", {}).update({"dropout_frac": 0.05, "dropout_mean_h": 2.0})
HANG_S = 60                       # one validation of the small district takes about a second


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
        yield path                                   # the table itself (replace it whole, or add a key)
    elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
        yield path
    else:
        yield path


PATHS = [p for p in _leaves(BASE) if p]

VALUES = st.one_of(
    st.integers(min_value=-10**13, max_value=10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["", "nan", "-1", "1e9", "2024-13-45T00:00:00", "../../etc/passwd", "/dev/zero"]),
    st.lists(st.one_of(st.integers(-5, 5), st.floats(allow_nan=True)), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3), max_size=2),
    st.sampled_from([[], {}, [{}], [{"name": "x"}]]),
)

EDITS = st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "delete", "add"]), VALUES,
                           st.text(min_size=1, max_size=8)), min_size=1, max_size=3)


def _apply(data: dict, path: tuple, how: str, value, new_key: str) -> None:
    node = data
    for part in path[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return                                   # an earlier edit removed the way
    last = path[-1]
    target = node.get(last) if isinstance(node, dict) else node[last] if isinstance(node, list) and \
        isinstance(last, int) and last < len(node) else None
    if how == "add" and isinstance(target, dict):
        target[new_key] = value
    elif how == "delete" and isinstance(node, dict):
        node.pop(last, None)
    elif how == "delete" and isinstance(node, list) and isinstance(last, int) and last < len(node):
        node.pop(last)
    elif isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value


def _on_alarm(signum, frame):
    raise TimeoutError(f"validate took more than {HANG_S} s")


def _check(edits) -> None:
    """Validate the small district after *edits*: accepted, or one InputError line; anything
    else (another exception, more than one line, a hang) fails."""
    data = copy.deepcopy(BASE)
    for path, how, value, new_key in edits:
        _apply(data, path, how, value, new_key)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(HANG_S)
    try:
        vpp.validate(scenario_from_dict(data, str(SMALL), SMALL.parent))
    except vpp.InputError as e:
        assert "\n" not in str(e) and str(e).strip()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@settings(max_examples=int(os.environ.get("VPP_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(EDITS)
def test_any_scenario_dictionary_is_accepted_or_refused_in_one_line(edits):
    """VPP_FUZZ_EXAMPLES=2500 searches harder (a few minutes); it found a key with a line
    break printed over two lines, and an EV station_type given as a list (a TypeError)."""
    _check(edits)


@pytest.mark.parametrize("edits", [
    [(("time",), "add", 0, "a\nb")],                                    # a key with a line break
    [(("fleets", 3, "params"), "set", {"station_type": [1]}, "x")],      # station_type as a list
])
def test_the_inputs_the_fuzzer_found_stay_one_line(edits):
    _check(edits)


def test_the_check_fails_on_an_error_that_is_not_an_input_error(monkeypatch):
    """A bare exception for one value (as the EV station_type was) fails the same check."""
    import vpp.api

    real = vpp.api._prepare

    def broken(scenario, source):
        if scenario.seed == 13:
            raise KeyError("seed")
        return real(scenario, source)

    monkeypatch.setattr(vpp.api, "_prepare", broken)
    with pytest.raises(KeyError):
        _check([(("seed",), "set", 13, "x")])
