"""Parameter distributions for fleets: a number, or a distribution to sample.

A fleet parameter in a scenario is either a plain number (every asset gets
it) or a table naming a distribution, e.g.::

    tilt_deg = { dist = "uniform", low = 10, high = 30 }
    p_dc_kwp = { dist = "lognormal", mean = 500, std = 250, low = 50, high = 5000 }

Each asset draws its value once, from its fleet's own random stream.  Bounds
are checked on the whole support of the distribution, so an unbounded normal
for a quantity that must be positive is rejected when the scenario is read,
not when a negative draw appears mid-run.

Every model of user input (fleet parameters, distributions, scenario
sections, strategy options) derives from :class:`InputModel`: no unknown
keys, no NaN or infinity, and no boolean where a number is meant.  A field
whose ``inf`` means "no limit" says so with the type :data:`Limit`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union, get_args

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from vpp.errors import FieldError

__all__ = [
    "InputModel",
    "Limit",
    "Uniform",
    "Normal",
    "LogNormal",
    "Choice",
    "Spec",
    "ranged",
    "sample",
    "support",
]


def _admits_bool(annotation) -> bool:
    """Whether a field's type accepts ``true``/``false`` (``bool`` anywhere in it)."""
    return annotation is bool or any(_admits_bool(a) for a in get_args(annotation))


def _has_bool(value) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_has_bool(v) for v in value)
    return isinstance(value, bool | np.bool_)


class InputModel(BaseModel):
    """Base of every model of user input: frozen, no unknown keys, finite numbers.

    NaN and ``±inf`` are rejected everywhere (``allow_inf_nan=False``) except in
    fields typed :data:`Limit`; ``true``/``false`` are rejected where a number
    is meant (pydantic alone would read ``true`` as 1).  Nested tables are
    models of their own and check themselves.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if field is not None and _has_bool(value) and not _admits_bool(field.annotation):
                    raise FieldError((name,), f"must be a number, not a boolean (got {_toml(value)})")
        return data


def _toml(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool | np.bool_) else repr(value)


def _not_nan(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        raise ValueError("must be a number, not NaN")
    return x


#: A bound whose ``inf`` (``-inf``) means "no limit": infinity allowed, NaN not
#: (checked before the field's own bounds, which NaN would fail with a puzzling reason).
Limit = Annotated[float, Field(allow_inf_nan=True), BeforeValidator(_not_nan)]


class _Dist(InputModel):
    pass


class Uniform(_Dist):
    """Uniform on ``[low, high]``."""

    dist: Literal["uniform"]
    """Names the distribution: ``"uniform"``."""
    low: float
    """The smallest value, at most ``high``. [the parameter's unit]"""
    high: float
    """The largest value. [the parameter's unit]"""

    @model_validator(mode="after")
    def _order(self):
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class Normal(_Dist):
    """Normal with ``mean`` and ``std``, optionally truncated to ``[low, high]``."""

    dist: Literal["normal"]
    """Names the distribution: ``"normal"``."""
    mean: float
    """Mean before truncation. [the parameter's unit]"""
    std: float = Field(ge=0)
    """Standard deviation before truncation (0: every asset gets ``mean``). [the parameter's unit]"""
    low: Limit = -np.inf
    """Truncation: a draw below it is drawn again (default ``-inf``: none); a quantity that must be
    positive needs it, since bounds are checked on the whole support. [the parameter's unit]"""
    high: Limit = np.inf
    """Truncation: a draw above it is drawn again (default ``inf``: none). [the parameter's unit]"""

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class LogNormal(_Dist):
    """Log-normal with the given ``mean`` and ``std`` of the value itself
    (not of its logarithm), optionally truncated to ``[low, high]``."""

    dist: Literal["lognormal"]
    """Names the distribution: ``"lognormal"``."""
    mean: float = Field(gt=0)
    """Mean of the value itself (not of its logarithm), before truncation. [the parameter's unit]"""
    std: float = Field(ge=0)
    """Standard deviation of the value itself, before truncation. [the parameter's unit]"""
    low: Limit = 0.0
    """Truncation: a draw below it is drawn again (default 0: none, a log-normal value is positive).
    [the parameter's unit]"""
    high: Limit = np.inf
    """Truncation: a draw above it is drawn again (default ``inf``: none). [the parameter's unit]"""

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class Choice(_Dist):
    """One of ``values``, with optional ``weights`` (normalised)."""

    dist: Literal["choice"]
    """Names the distribution: ``"choice"``."""
    values: list[float] = Field(min_length=1)
    """The values an asset can get. [the parameter's unit]"""
    weights: list[float] | None = None
    """Relative weight of each value, one per value, normalised to sum to 1 (unset: equal). [-]"""

    @model_validator(mode="after")
    def _weights(self):
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("weights must have as many entries as values")
            if min(self.weights) < 0 or sum(self.weights) <= 0:
                raise ValueError("weights must be non-negative and not all zero")
        return self


Distribution = Annotated[Union[Uniform, Normal, LogNormal, Choice], Field(discriminator="dist")]
Spec = Union[float, Distribution]


def support(spec: Spec) -> tuple[float, float]:
    """Smallest and largest value *spec* can produce."""
    if isinstance(spec, (int, float)):
        return float(spec), float(spec)
    if isinstance(spec, Choice):
        return min(spec.values), max(spec.values)
    if isinstance(spec, Normal) and spec.std == 0:
        return spec.mean, spec.mean
    return spec.low, spec.high


def ranged(ge: float | None = None, le: float | None = None, gt: float | None = None):
    """A :data:`Spec` whose whole support must lie in the given bounds."""

    def check(spec: Spec) -> Spec:
        lo, hi = support(spec)
        if gt is not None and not lo > gt:
            raise ValueError(f"must be greater than {gt} (the smallest possible value is {lo})")
        if ge is not None and not lo >= ge:
            raise ValueError(f"must be at least {ge} (the smallest possible value is {lo})")
        if le is not None and not hi <= le:
            raise ValueError(f"must be at most {le} (the largest possible value is {hi})")
        return spec

    return Annotated[Spec, AfterValidator(check)]


def _truncated(draw, low: float, high: float, rng: np.random.Generator, n: int) -> np.ndarray:
    """Rejection-sample *draw(rng, k)* into ``[low, high]``."""
    out = draw(rng, n)
    bad = (out < low) | (out > high)
    for _ in range(100):
        if not bad.any():
            return out
        out[bad] = draw(rng, int(bad.sum()))
        bad = (out < low) | (out > high)
    return np.clip(out, low, high)  # pathological truncation: fall back to clipping


def sample(spec: Spec, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw *n* values of *spec* as a float array."""
    if isinstance(spec, (int, float)):
        return np.full(n, float(spec))
    if isinstance(spec, Uniform):
        return rng.uniform(spec.low, spec.high, n)
    if isinstance(spec, Choice):
        w = None if spec.weights is None else np.asarray(spec.weights) / sum(spec.weights)
        return rng.choice(np.asarray(spec.values, float), size=n, p=w)
    if isinstance(spec, Normal):
        return _truncated(lambda g, k: g.normal(spec.mean, spec.std, k), spec.low, spec.high, rng, n)
    if isinstance(spec, LogNormal):
        sigma2 = np.log1p((spec.std / spec.mean) ** 2)
        mu = np.log(spec.mean) - sigma2 / 2
        return _truncated(
            lambda g, k: g.lognormal(mu, np.sqrt(sigma2), k), spec.low, spec.high, rng, n
        )
    raise TypeError(f"not a parameter spec: {spec!r}")
