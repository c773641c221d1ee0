"""MkDocs hook: pages generated from the code and the examples at build time.

``<!-- vpp:scenario-reference -->`` becomes :func:`vpp.reference.scenario_reference`;
``<!-- vpp:notebook PATH -->`` becomes the notebook's cells (Markdown as written,
code as Python blocks; outputs are not stored).  The docstrings' Sphinx roles
(``:func:`run` ``) are read as plain code, and a reStructuredText table (which
Markdown shows as a row of ``=``) fails the strict build.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.vpp")    # a warning here fails `mkdocs build --strict`
_RST_TABLE = re.compile(r"={6,}\s+={6,}")

_NOTEBOOK = re.compile(r"<!-- vpp:notebook (\S+) -->")
_SPHINX_ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|obj|exc):(<code>)~?")


def _notebook_markdown(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    parts = []
    for cell in cells:
        source = "".join(cell["source"]).strip()
        if not source:
            continue
        parts.append(source if cell["cell_type"] == "markdown" else f"```python\n{source}\n```")
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "<!-- vpp:scenario-reference -->" in markdown:
        from vpp.reference import scenario_reference

        markdown = markdown.replace("<!-- vpp:scenario-reference -->", scenario_reference())
    root = Path(config["config_file_path"]).parent
    return _NOTEBOOK.sub(lambda m: _notebook_markdown(root / m.group(1)), markdown)


def on_page_content(html: str, page, config, files) -> str:
    if _RST_TABLE.search(html):
        log.warning("%s: a docstring's reStructuredText table is shown as raw text; write it as a list",
                    page.file.src_path)
    return _SPHINX_ROLE.sub(r"\1", html)
