"""README.md's configuration tables, equal to config.OPTIONS: ``synced`` gives the README with them
regenerated. scripts/gen_docs.py writes it (and ``--check`` fails when it is stale), with every other
generated document.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config_doc import render_configuration_doc  # noqa: E402

README = ROOT / "README.md"
BEGIN = "<!-- BEGIN GENERATED CONFIGURATION -->"
END = "<!-- END GENERATED CONFIGURATION -->"


def configuration_section() -> str:
    """The group tables of docs/configuration.md, one heading level deeper, for the README."""
    doc = render_configuration_doc()
    tables = doc[doc.index("\n## ") + 1 :]
    return tables.replace("\n## ", "\n### ").replace("## ", "### ", 1)


def synced(readme: str) -> str:
    """README text with the generated section replaced by the current one."""
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{configuration_section()}{END}{tail}"
