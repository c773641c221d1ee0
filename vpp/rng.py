"""Per-component random streams spawned from the one scenario seed.

Each component (a fleet, the weather, the forecast error model) draws from its
own :class:`numpy.random.Generator`, keyed by its *name* rather than by its
position, so that adding or removing a fleet never changes another
component's draws, and two strategies run on the same scenario see the same
weather, sessions and forecast errors.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["component_rng"]


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def component_rng(seed: int, name: str) -> np.random.Generator:
    """A generator for component *name*, independent of every other name."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_key(name),)))
