"""The scenario reference, generated from the input models themselves.

Every field of :class:`vpp.scenario.Scenario`, of each registered fleet type's
``Params`` and each strategy's ``Options``, of the sweep file and of the
parameter distributions, with its TOML type, unit, default, bounds and text.
The text is the field's ``description`` if it has one, else the docstring under
it, else its entry in the class docstring's ``Parameters``, else its comments
in the source (above it, or at its end and the lines aligned under that; a
``# -- part`` comment heads a group and belongs to no field); the unit is the ``[unit]`` ending that text, else the one
its name ends in (``_kw``, ``_cny_per_kwh``; one unit convention, DESIGN.md).

The documentation site renders :func:`scenario_reference` (``docs/_hooks``), and
``tests/test_reference.py`` keeps every field documented with
:func:`undocumented_fields`.
"""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import io
import math
import re
import textwrap
import tokenize
import types
import typing
from pathlib import Path

import annotated_types as at
from pydantic import BaseModel

__all__ = ["field_docs", "field_unit", "model_sections", "undocumented_fields", "scenario_reference"]

# name ending -> unit, longest first (matched on whole "_" words)
_UNIT_ENDINGS = (
    ("_cny_per_kw_month", "CNY/(kW·month)"), ("_cny_per_kwh", "CNY/kWh"), ("_cny_per_t", "CNY/t"),
    ("_cny_per_kw", "CNY/kW"), ("_cny_per_h", "CNY/h"), ("_cny", "CNY"),
    ("_kg_per_kwh", "kg CO₂/kWh"), ("_kwh_m2_day", "kWh/(m²·day)"), ("_kw_per_h", "kW/h"),
    ("_w_per_m2", "W/m²"), ("_kw_per_k", "kW/K"), ("_kwh_per_k", "kWh/K"), ("_k_per_kw", "K/kW"), ("_w_m2", "W/m²"),
    ("_frac_per_k", "1/K"), ("_per_k", "1/K"), ("_per_h", "1/h"), ("_per_day", "1/day"),
    ("_kwp", "kWp"), ("_kwh", "kWh"), ("_kw", "kW"), ("_mw", "MW"), ("_m_s", "m/s"), ("_m2", "m²"),
    ("_deg", "°"), ("_c", "°C"), ("_k", "K"), ("_h", "h"), ("_min", "min"), ("_s", "s"),
    ("_days", "days"), ("_pa", "Pa"), ("_m", "m"), ("_frac", "fraction"), ("_hour", "hour of day"),
    ("_month", "month (1–12)"),
)
_UNIT_IN_TEXT = re.compile(r"\s*\[([^\[\]]+)\]\s*$")
_CHOICES = re.compile(r"^\^\(([\w|]+)\)\$$")


# -- the text of each field ---------------------------------------------------------

def _comments(source: str) -> dict[int, tuple[int, str]]:
    """Each comment's line -> (column, text); column -1 for a comment ending a code line."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            own_line = tok.line[: tok.start[1]].strip() == ""
            out[tok.start[0]] = (tok.start[1] if own_line else -1, tok.string.lstrip("#").strip())
    return out


def _class_docs(klass: type) -> tuple[dict[str, str], dict[str, str]]:
    """The docstrings and the comments the source of *klass* gives its own fields."""
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}, {}
    node = ast.parse(source).body[0]
    comments = _comments(source)
    docs, commented = {}, {}
    body = node.body
    for i, stmt in enumerate(body):
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        after = body[i + 1] if i + 1 < len(body) else None
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[stmt.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
            continue
        indent = stmt.col_offset
        above, line = [], stmt.lineno - 1
        while line in comments and comments[line][0] == indent and not comments[line][1].startswith("--"):
            above.insert(0, comments[line][1])                                 # "# -- part" heads a group
            line -= 1
        trailing = [comments[n][1] for n in range(stmt.lineno, stmt.end_lineno + 1) if comments.get(n, (0,))[0] == -1]
        line = stmt.end_lineno + 1
        while trailing and line in comments and comments[line][0] > indent:    # aligned continuation lines
            trailing.append(comments[line][1])
            line += 1
        text = " ".join(above + trailing).strip()
        if text:
            commented[stmt.target.id] = text
    return docs, commented


def _numpy_section_docs(klass: type) -> dict[str, str]:
    """Fields described in the class docstring's ``Parameters`` or ``Attributes`` section."""
    lines = inspect.cleandoc(klass.__dict__.get("__doc__") or "").splitlines()
    out, names, inside = {}, [], False
    for i, line in enumerate(lines):
        underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if underline or set(line.strip()) == {"-"}:
            inside = line.strip() in ("Parameters", "Attributes") if underline else inside
            names = []
            continue
        if not inside or not line.strip():
            continue
        if not line.startswith(" "):
            names = [n.strip() for n in line.split(":")[0].split(",")]
        else:
            for n in names:
                out[n] = f"{out.get(n, '')} {line.strip()}".strip()
    return out


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Each field of *model* -> its text (description, docstring or comments; "" if none)."""
    found: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if isinstance(klass, type) and issubclass(klass, BaseModel) and not klass.__module__.startswith("pydantic"):
            docstrings, comments = _class_docs(klass)
            found.update(comments)
            found.update(_numpy_section_docs(klass))
            found.update(docstrings)
    return {name: (f.description or found.get(name, "")) for name, f in model.model_fields.items()
            if not f.exclude}


def field_unit(name: str, text: str = "") -> str:
    """The unit a field's text ends with (``[kWp]``), else the one its name ends in; "" if none."""
    m = _UNIT_IN_TEXT.search(text)
    if m and m.group(1) not in ("-", ""):
        return m.group(1)
    if m:
        return ""
    for ending, unit in _UNIT_ENDINGS:
        if name.endswith(ending) and name != ending.lstrip("_"):
            return unit
    return ""


def undocumented_fields(models=None) -> list[str]:
    """``Model.field`` of every field with no text, over *models* (default: every section)."""
    models = [m for _, _, m in model_sections()] if models is None else models
    return [f"{m.__name__}.{name}" for m in models for name, text in field_docs(m).items() if not text]


# -- types, bounds, defaults as a TOML user reads them ---------------------------------

def _is_model(t) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _is_distribution(t) -> bool:
    from vpp.params import _Dist

    return isinstance(t, type) and issubclass(t, _Dist)


def _type_text(ann, anchors: dict) -> str:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _type_text(args[0], anchors)
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in args if a is not type(None)]
        if any(_is_distribution(a) for a in _leaves(ann)):
            return "number or distribution" if float in parts else "distribution"
        texts = list(dict.fromkeys(_type_text(a, anchors) for a in parts))
        return " or ".join(texts) + (" (optional)" if len(parts) < len(args) else "")
    if origin is typing.Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (list, tuple):
        return f"array of {_type_text(args[0], anchors)}" if args else "array"
    if origin is dict:
        return f"table of {_type_text(args[1], anchors)} by name" if args[1] is not typing.Any else "table"
    if _is_model(ann):
        heading = anchors.get(ann)
        if not heading:
            return "table"
        text = heading.replace("[", "\\[").replace("]", "\\]")
        return f"[{text}](#{_anchor(heading)})"
    return {float: "number", int: "integer", str: "string", bool: "boolean", dt.datetime: "date-time",
            dt.date: "date", Path: "path", typing.Any: "any"}.get(ann, getattr(ann, "__name__", str(ann)))


def _leaves(ann):
    args = typing.get_args(ann)
    if not args:
        yield ann
    for a in args:
        if not isinstance(a, str | int | float):
            yield from _leaves(a)


def _number(x) -> str:
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}" if isinstance(x, float) else str(x)


def _bounds(field) -> str:
    """The field's bounds as ``0 ≤ x ≤ 1``, its choices, or its lengths."""
    lo = hi = None
    notes = []
    metadata = list(field.metadata)
    for meta in list(metadata):
        validator = getattr(meta, "func", None)
        if validator is not None and validator.__name__ == "check":        # vpp.params.ranged
            nonlocals = inspect.getclosurevars(validator).nonlocals
            for key in ("ge", "gt", "le"):
                if nonlocals.get(key) is not None:
                    metadata.append({"ge": at.Ge, "gt": at.Gt, "le": at.Le}[key](nonlocals[key]))
    for arg in typing.get_args(field.annotation):
        metadata.extend(getattr(arg, "__metadata__", ()))
    for meta in metadata:
        if isinstance(meta, at.Ge):
            lo = f"{_number(meta.ge)} ≤"
        elif isinstance(meta, at.Gt):
            lo = f"{_number(meta.gt)} <"
        elif isinstance(meta, at.Le):
            hi = f"≤ {_number(meta.le)}"
        elif isinstance(meta, at.Lt):
            hi = f"< {_number(meta.lt)}"
        elif isinstance(meta, at.MinLen):
            notes.append(f"at least {meta.min_length} entries" if meta.min_length > 1 else "not empty")
        elif isinstance(meta, at.MaxLen):
            notes.append(f"at most {meta.max_length} entries")
        pattern = getattr(meta, "pattern", None)
        if pattern:
            choices = _CHOICES.match(pattern)
            notes.append(" \\| ".join(f'`"{c}"`' for c in choices.group(1).split("|")) if choices
                         else f"matches `{pattern}`")
    if lo or hi:
        notes.insert(0, " ".join(p for p in (lo, "x", hi) if p))
    return "; ".join(dict.fromkeys(notes))


def _toml(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        fields = value.model_dump(exclude_defaults=False)
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in fields.items() if v is not None) + " }"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return _number(value)


def _default(field, annotation) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel) and not _is_distribution(type(value)):
        return "the table's defaults"
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        return ", ".join(f"`{k}`" for k in value) + " (the tables' defaults)"
    return f"`{_toml(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_table(model: type[BaseModel], anchors: dict | None = None) -> str:
    """A Markdown table of *model*'s fields: name, type, unit, default, bounds, text
    (*anchors*: the heading of each nested model's table, to link to)."""
    anchors = anchors or {}
    docs = field_docs(model)
    rows = ["| field | type | unit | default | bounds | meaning |", "|---|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        text = docs[name]
        unit = field_unit(name, text)
        text = _UNIT_IN_TEXT.sub("", text)
        rows.append(f"| `{name}` | {_type_text(field.annotation, anchors)} | {unit} | "
                    f"{_default(field, field.annotation)} | {_bounds(field)} | {_cell(text)} |")
    return "\n".join(rows)


# -- the sections ---------------------------------------------------------------------

def _nested(model):
    """(field name, model, is_array, is_map) for each field of *model* holding tables."""
    for name, field in model.model_fields.items():
        ann, outer = field.annotation, typing.get_origin(field.annotation)
        inner = [a for a in _leaves(ann) if _is_model(a) and not _is_distribution(a)]
        for sub in dict.fromkeys(inner):
            yield name, sub, outer is list, outer is dict


def model_sections() -> list[tuple[str, str, type[BaseModel]]]:
    """(heading, introduction, model) for every table a scenario or sweep file can hold."""
    from vpp.assets import FLEET_TYPES
    from vpp.optimizer import STRATEGIES
    from vpp.params import Choice, LogNormal, Normal, Uniform
    from vpp.scenario import Scenario
    from vpp.sweepspec import ScaleConfig, SweepSpec

    sections = [("Top level", "The scenario file's own keys (besides `extends` and `[[districts]]`, below).",
                 Scenario)]

    def walk(model, path):
        for name, sub, is_array, is_map in _nested(model):
            key = f"{path}.{name}" if path else name
            heading = f"[[{key}]]" if is_array else f"[{key}.NAME]" if is_map else f"[{key}]"
            sections.append((heading, _intro(sub), sub))
            walk(sub, f"{key}.NAME" if is_map else key)

    walk(Scenario, "")
    for name, cls in sorted(FLEET_TYPES.items()):
        sections.append((f'[fleets.params] of type = "{name}"', _intro(cls.Params), cls.Params))
    for name, cls in sorted(STRATEGIES.items()):
        options = getattr(cls, "Options", None)
        if options is not None and options.model_fields:
            sections.append((f'[strategy.options] of name = "{name}"', _intro(options), options))
    for dist in (Uniform, Normal, LogNormal, Choice):
        sections.append((f'distribution dist = "{dist.model_fields["dist"].annotation.__args__[0]}"',
                         _intro(dist), dist))
    sections.append(("Sweep file: top level", _intro(SweepSpec), SweepSpec))
    sections.append(("Sweep file: [scale]", _intro(ScaleConfig), ScaleConfig))
    return sections


def _intro(model) -> str:
    return " ".join(inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].split())


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def scenario_reference() -> str:
    """Markdown: one table per section of :func:`model_sections`, fields in file order."""
    sections = model_sections()
    anchors = {}                                    # model -> the heading of its table
    for heading, _, model in sections:
        anchors.setdefault(model, heading)
    out = []
    for heading, intro, model in sections:
        out += [f"### {heading} {{#{_anchor(heading)}}}", "", intro, "", model_table(model, anchors), ""]
    return "\n".join(out)
