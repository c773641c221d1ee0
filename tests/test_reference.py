"""The scenario reference the documentation site shows (vpp.reference): every field
of every table, its text from the source, its unit, default and bounds."""

from __future__ import annotations

import importlib.util
import re
import types
from pathlib import Path

import pytest
from pydantic import Field

from vpp.assets import FLEET_TYPES
from vpp.optimizer import STRATEGIES
from vpp.params import InputModel
from vpp.reference import field_docs, field_unit, model_sections, scenario_reference, undocumented_fields


class Toy(InputModel):
    """A toy table.

    Parameters
    ----------
    from_section, also_section : float
        Described in the class docstring. [kW]
    """

    with_docstring: float = 1.0
    """Said under the field. [kWp]"""
    # said above the field,
    # on two lines
    with_comment_above: int = 2
    with_trailing_comment_kwh: float = Field(3.0, ge=0)   # said at the end of the line,
                                                          # and continued under it
    with_description: str = Field("x", description="said in Field")
    from_section: float = 0.0  # a short comment the section's fuller entry outranks
    also_section: float = 0.0
    # -- a group's heading, no field's text
    undocumented_h: float = 4.0


def _section(reference: str, heading: str) -> str:
    start = reference.index(f"### {heading} ")
    end = reference.find("\n### ", start + 1)
    return reference[start:end if end > 0 else None]


def _row(section: str, name: str) -> list[str]:
    rows = [line for line in section.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"{name}: {len(rows)} rows"
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", rows[0])[1:-1]]


def test_each_kind_of_source_text_is_found():
    docs = field_docs(Toy)
    assert docs["with_docstring"] == "Said under the field. [kWp]"
    assert docs["with_comment_above"] == "said above the field, on two lines"
    assert docs["with_trailing_comment_kwh"] == "said at the end of the line, and continued under it"
    assert docs["with_description"] == "said in Field"
    assert docs["from_section"] == docs["also_section"] == "Described in the class docstring. [kW]"
    assert docs["undocumented_h"] == ""


def test_an_undocumented_field_is_named():
    assert undocumented_fields([Toy]) == ["Toy.undocumented_h"]


def test_every_field_of_every_table_is_documented():
    """The project's own tables (other tests register strategies of their own)."""
    ours = [m for _, _, m in model_sections() if m.__module__.startswith("vpp")]
    assert len(ours) > 30
    assert undocumented_fields(ours) == []


def test_units_come_from_the_text_then_the_name():
    assert field_unit("p_dc_kwp", "DC rating. [kWp]") == "kWp"
    assert field_unit("tilt", "A ratio. [-]") == ""
    assert field_unit("import_limit_kw") == "kW"
    assert field_unit("price_cny_per_kwh") == "CNY/kWh"
    assert field_unit("demand_charge_cny_per_kw_month") == "CNY/(kW·month)"
    assert field_unit("step_min") == "min"
    assert field_unit("temp_air_c") == "°C"
    assert field_unit("wind_speed_m_s") == "m/s"
    assert field_unit("name") == ""


def test_every_fleet_type_and_strategy_has_its_table():
    headings = [h for h, _, _ in model_sections()]
    for name in FLEET_TYPES:
        assert f'[fleets.params] of type = "{name}"' in headings
    for name, cls in STRATEGIES.items():
        if cls.Options.model_fields:
            assert f'[strategy.options] of name = "{name}"' in headings


def test_every_field_is_a_row_of_its_table():
    reference = scenario_reference()
    for heading, _, model in model_sections():
        section = _section(reference, heading)
        for name, field in model.model_fields.items():
            if not field.exclude:
                _row(section, name)


def test_rows_read_as_the_models_say():
    """Expected cells written from the models' source (vpp/scenario.py, assets/pv.py)."""
    reference = scenario_reference()
    time = _section(reference, "[time]")
    assert _row(time, "step_min")[1:5] == ["integer", "min", "`15`", "0 < x ≤ 1440"]
    assert _row(time, "start")[3] == "**required**"
    nodes = _section(reference, "[[nodes]]")
    assert _row(nodes, "limits")[4] == '`"hard"` \\| `"soft"`'
    pv = _section(reference, '[fleets.params] of type = "pv"')
    assert _row(pv, "p_dc_kwp")[1:5] == ["number or distribution", "kWp", "`500`", "0 < x ≤ 1e+06"]
    assert _row(pv, "transposition_model")[3] == '`"haydavies"`'
    assert "Hay & Davies (1980)" in _row(pv, "transposition_model")[5]
    top = _section(reference, "Top level")
    assert _row(top, "time")[1] == "[\\[time\\]](#time)"


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hook():
    """The documentation site's hook (docs/_hooks/site.py), loaded as mkdocs loads it."""
    spec = importlib.util.spec_from_file_location("site_hook", ROOT / "docs" / "_hooks" / "site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_docs_build_hook_renders_the_reference_and_the_notebook(hook):
    config = {"config_file_path": str(ROOT / "mkdocs.yml")}
    page = hook.on_page_markdown("a\n<!-- vpp:scenario-reference -->\nb", None, config, None)
    assert "### [time] {#time}" in page and "<!--" not in page
    page = hook.on_page_markdown("<!-- vpp:notebook examples/tutorial.ipynb -->", None, config, None)
    assert "```python" in page and "import vpp" in page
    assert hook.on_page_content("see :func:<code>run</code>", None, config, None) == "see <code>run</code>"


def test_a_restructuredtext_table_fails_the_strict_docs_build(hook, caplog):
    """Markdown shows an RST table as a row of '=': the hook warns, which --strict turns into a failure."""
    page = types.SimpleNamespace(file=types.SimpleNamespace(src_path="reference/data-files.md"))
    with caplog.at_level("WARNING"):
        hook.on_page_content("<p>========  ======== format reader</p>", page, {}, None)
    assert "data-files.md" in caplog.text and "list" in caplog.text


@pytest.mark.parametrize("kind", ["epw", "tmy3", "csv", "synthetic"])
def test_literal_choices_are_listed(kind: str):
    weather = _section(scenario_reference(), "[weather]")
    assert f'`"{kind}"`' in _row(weather, "source")[1]
