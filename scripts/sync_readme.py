"""Keep README.md's configuration tables equal to config.OPTIONS.

    .venv/bin/python scripts/sync_readme.py            # rewrite the generated section of README.md
    .venv/bin/python scripts/sync_readme.py --check    # exit 1 when README.md is stale

tests/test_readme.py runs the check, so the README cannot drift from the settings the code reads.
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail instead of writing when stale")
    args = parser.parse_args()
    current = README.read_text(encoding="utf-8")
    wanted = synced(current)
    if args.check:
        if current != wanted:
            print("README.md is stale: run .venv/bin/python scripts/sync_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
