"""Progress as log lines, where a progress bar cannot be drawn.

When stderr is not a terminal (a batch job, ``nohup``, output piped to a file,
a notebook capturing the log) a tqdm bar prints nothing useful, and a long run
or sweep would be silent for minutes.  :class:`LogLines` prints the first
update, then one line every ``every_s`` seconds, and the last, each with the
time spent and the time left at the pace so far.  ``--verbose`` asks for the
lines on a terminal too.
"""

from __future__ import annotations

import sys
import time

__all__ = ["LogLines", "duration", "on_terminal"]


def on_terminal(stream) -> bool:
    """Whether *stream* is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def duration(seconds: float) -> str:
    """``42 s``, ``12 min`` or ``2 h 05 min``."""
    m = int(round(seconds / 60))
    return f"{seconds:.0f} s" if seconds < 60 else f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


class LogLines:
    """``label: done/total unit[, note], <spent> so far, about <left> left``, at most
    one line every *every_s* seconds (besides the first and the last).

    Parameters
    ----------
    label, unit : str
        What progresses (``"sweep"``, a strategy) and what is counted (``"runs"``, ``"steps"``).
    total : int
    enabled : bool
        False: print nothing.
    every_s : float
        Least time between two lines. [s]
    clock, stream
        For tests: a monotonic clock and the output (default ``sys.stderr``).
    """

    def __init__(self, label: str, total: int, unit: str, enabled: bool, every_s: float = 60.0,
                 clock=time.monotonic, stream=None):
        self.label, self.total, self.unit, self.enabled, self.every_s = label, total, unit, enabled, every_s
        self.clock = clock
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = clock()
        self.last = None

    def update(self, done: int, note: str = "") -> None:
        """*done* of the total are done; *note* goes after the count."""
        now = self.clock()
        if not self.enabled or done <= 0 or (self.last is not None and now - self.last < self.every_s
                                             and done < self.total):
            return
        self.last = now
        spent = now - self.t0
        left = spent / done * (self.total - done)
        print(f"{self.label}: {done:,}/{self.total:,} {self.unit}" + (f", {note}" if note else "")
              + f", {duration(spent)} so far" + (f", about {duration(left)} left" if done < self.total else ""),
              file=self.stream, flush=True)
