"""User-facing input errors: one line naming the file, the field and the reason.

Everything a user can get wrong (a scenario file, a CSV of exogenous data, a
command-line option) raises :class:`InputError`.  The CLI prints ``str(error)``
on one line and exits with status 2; the Python API lets it propagate.  Bugs
in the simulator are never wrapped in it, so they keep their traceback.
"""

from __future__ import annotations

import json
import re

__all__ = ["InputError", "ScenarioError", "FieldError", "field_path"]


_BARE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


def field_path(loc: tuple) -> str:
    """Render a pydantic/TOML location tuple as ``fleets[2].params.tilt_deg``; a key
    TOML would quote (a space, a dot, a newline) is shown quoted, as TOML writes it."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = str(part)
            out += ("." if out else "") + (key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False))
    return out or "(top level)"


def _one_line(text: str) -> str:
    """*text* with its line breaks and other control characters escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


class InputError(Exception):
    """Bad user input: ``source: field: reason`` on one line."""

    def __init__(self, source: str, field: str, reason: str):
        self.source = _one_line(source)
        self.field = _one_line(field)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.source}: {self.field}: {self.reason}")


class ScenarioError(InputError):
    """A scenario file (or one of the data files it names) is invalid."""


class FieldError(ValueError):
    """Raised inside a pydantic validator: a problem that belongs to the field at
    *loc* (relative to the model that raises it), not to the model as a whole.
    :func:`vpp.scenario.validation_error` reports it at that field."""

    def __init__(self, loc: tuple, msg: str):
        super().__init__(msg)
        self.loc = tuple(loc)
