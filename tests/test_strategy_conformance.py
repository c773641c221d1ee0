"""One contract every registered strategy passes (the suite of vpp.testing): energy
balance at every node and step, asset limits, raw setpoints inside the offered forms,
determinism under a seed, and a one-line error for a misconfigured option."""

import pandas as pd
from conftest import SMALL

import vpp
from vpp.optimizer import STRATEGIES
from vpp.optimizer.baseline import SourceFollowsLoad
from vpp.testing import RecordingStrategy, parametrize_with_checks

NAMES = sorted(STRATEGIES)          # the built-in strategies, registered on import


@parametrize_with_checks([STRATEGIES[name]() for name in NAMES])
def test_strategy_conforms(check):
    check()


def test_recording_a_strategy_leaves_the_run_unchanged():
    """The suite's wrapper builds a problem for every window, even for a strategy
    that uses none; what the fleets do must not change."""
    rec = RecordingStrategy(SourceFollowsLoad())
    recorded = vpp.run(SMALL, strategy=rec)
    plain = vpp.run(SMALL, strategy="source_follows_load")
    pd.testing.assert_frame_equal(recorded.fleets, plain.fleets)
    pd.testing.assert_frame_equal(recorded.nodes, plain.nodes)
    assert rec.calls and all(problem is not None for problem, _ in rec.calls)
