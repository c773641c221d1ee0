"""Setpoints over a network that delays and drops messages (``[comms]``).

The dispatcher sends each setpoint row (an asset, or a controllable part of
one) its schedule for the next interval as one message.  Each message is lost
with probability ``loss_prob`` and otherwise arrives after its own latency
(``latency_s``, a number or a distribution drawn per message), from the
scenario's ``comms`` random stream.

What an asset does, step by step (steps of ``time.step_min``):

* a message arriving in the first half of a step governs that step (its
  power is the step's mean, and the old setpoint held for less than half of
  it); one arriving later governs from the next step;
* until its message arrives (late or lost), an asset **holds** the last
  setpoint it applied, as field controllers keep their last command;
* an asset that has heard nothing for ``timeout_min`` **falls back** to its
  local default, the uncontrolled baseline, and resumes when a message
  arrives;
* a strategy that leaves a fleet uncontrolled, or a schedule that has run
  out, releases its assets to the baseline at once (as without ``[comms]``).

With ``loss_prob = 0`` and ``latency_s = 0`` every message arrives at the step
it is sent, so a run is the same as one without ``[comms]``, and a strategy
that sends nothing (``source_follows_load``) runs the same at any loss: both
are tested.  Seconds of latency are below half a 15-minute step, so at that
resolution only losses and latencies of minutes change a run.

Per fleet, :meth:`SetpointLink.counts` gives the messages sent, lost and
late, and the row-steps that applied a fresh setpoint, held an old one, or
fell back (the ``comms`` table of :class:`~vpp.results.Results`).

**Telemetry** arrives ``telemetry_delay_min`` late: the strategy plans from
the fleets' states as they were that long before the decision
(:func:`snapshot`: a copy of each fleet taken then), so its states are
estimates; the physics steps the real fleets, which clip what the stale plan
asks beyond their present limits.  The metered VPP exchange (peaks, the last
step's import) stays as metered.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from vpp.params import sample

__all__ = ["SetpointLink", "COUNT_COLUMNS", "snapshot"]

#: Columns of a fleet's counts (the ``comms`` table).
COUNT_COLUMNS = ("messages_sent", "messages_lost", "messages_late", "row_steps_applied", "row_steps_held",
                 "row_steps_fallback")
_NEVER = np.iinfo(np.int64).max


def snapshot(fleet):
    """A copy of *fleet* as its telemetry reports it now: stepping the fleet later leaves the
    copy as it was.  The read-only context (weather, timeline, parameters) is shared, not copied."""
    shared = {id(getattr(fleet, name)): getattr(fleet, name) for name in ("exo", "timeline", "params")
              if hasattr(fleet, name)}
    return copy.deepcopy(fleet, memo=shared)


class SetpointLink:
    """The network between the dispatcher and one fleet's setpoint rows.

    Parameters
    ----------
    n_rows : int
        Setpoint rows of the fleet.
    loss_prob : float
        Probability that a message is lost. [-]
    latency_s : float or distribution
        Delivery delay of a message (``vpp.params.Spec``). [s]
    timeout_s : float
        Silence after which a row falls back to its baseline. [s]
    step_s : float
        Simulation step. [s]
    rng : numpy.random.Generator
    """

    def __init__(self, n_rows: int, loss_prob: float, latency_s, timeout_s: float, step_s: float,
                 rng: np.random.Generator, n_steps: int = 0):
        self.n_rows, self.loss_prob, self.latency_s = n_rows, float(loss_prob), latency_s
        self.timeout_steps, self.step_s, self.rng = timeout_s / step_s, float(step_s), rng
        self.schedule: np.ndarray | None = None
        self.k0 = 0
        self.arrive = np.full(n_rows, _NEVER, dtype=np.int64)
        self.applied = np.full(n_rows, np.nan)                 # last setpoint each row applied
        self.heard = np.full(n_rows, -np.inf)                  # step of each row's last message
        self._counts = dict.fromkeys(COUNT_COLUMNS, 0)
        self._last_k, self._last_out = -1, None
        # per step: what the dispatcher sent for it, and the shares of rows holding / on the baseline
        self.planned_kw = np.full(n_steps, np.nan)
        self.applied_kw = np.full(n_steps, np.nan)   # the VPP's setpoints in force (rows on baseline left out)
        self.held_frac = np.zeros(n_steps)
        self.fallback_frac = np.zeros(n_steps)

    def send(self, k: int, schedule: np.ndarray | None) -> None:
        """The dispatcher's schedule for rows x steps from step *k* (``None``: release)."""
        self._last_k = -1
        if schedule is None:
            self.schedule = None
            return
        lost = self.rng.random(self.n_rows) < self.loss_prob
        delay_steps = np.floor(sample(self.latency_s, self.rng, self.n_rows) / self.step_s + 0.5).astype(np.int64)
        self.schedule, self.k0 = np.asarray(schedule, dtype=float), k
        self.arrive = np.where(lost, _NEVER, k + delay_steps)
        c = self._counts
        c["messages_sent"] += self.n_rows
        c["messages_lost"] += int(lost.sum())
        c["messages_late"] += int(((~lost) & (delay_steps > 0)).sum())

    def setpoint(self, k: int, baseline: Callable[[], np.ndarray]) -> np.ndarray | None:
        """The setpoint the rows apply at step *k*; ``None`` when every row runs its baseline."""
        if k == self._last_k:
            return self._last_out
        out = self._setpoint(k, baseline)
        self._last_k, self._last_out = k, out
        return out

    def _setpoint(self, k: int, baseline: Callable[[], np.ndarray]) -> np.ndarray | None:
        if self.schedule is None or k - self.k0 >= self.schedule.shape[1]:
            return None
        fresh = self.arrive <= k
        self.heard[fresh] = np.maximum(self.heard[fresh], self.arrive[fresh])
        value = self.schedule[:, k - self.k0]
        self.applied[fresh] = value[fresh]
        # a row never heard has heard = -inf, so it is never within the timeout
        hold = ~fresh & (k - self.heard < self.timeout_steps) & ~np.isnan(self.applied)
        fallback = ~fresh & ~hold
        c = self._counts
        c["row_steps_applied"] += int(fresh.sum())
        c["row_steps_held"] += int(hold.sum())
        c["row_steps_fallback"] += int(fallback.sum())
        out = np.where(fresh, value, self.applied)
        self._record(k, value, out[~fallback], hold, fallback)
        if fallback.all():
            return None
        if fallback.any():
            out = np.where(fallback, np.asarray(baseline(), dtype=float), out)
        return out

    def _record(self, k: int, sent: np.ndarray, in_force: np.ndarray, hold: np.ndarray, fallback: np.ndarray) -> None:
        """Step *k*'s sums of the setpoints sent and in force (NaN where a cap is ``inf`` or,
        for those in force, no row follows the VPP) and the shares of rows holding and on baseline."""
        if k >= len(self.planned_kw):
            return
        self.planned_kw[k] = float(sent.sum()) if np.isfinite(sent).all() else np.nan     # caps of inf: no plan
        if in_force.size and np.isfinite(in_force).all():
            self.applied_kw[k] = float(in_force.sum())
        self.held_frac[k] = float(hold.mean())
        self.fallback_frac[k] = float(fallback.mean())

    def counts(self) -> dict[str, int]:
        """Messages and row-steps so far (see :data:`COUNT_COLUMNS`)."""
        return dict(self._counts)
