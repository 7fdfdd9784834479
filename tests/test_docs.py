"""Every generated document is current: one `python scripts/gen_docs.py --check` covers them all.

docs/tools.md, docs/selectors.md, docs/configuration.md, the README's configuration tables,
docs/openapi.json and docs/rest-api.md's endpoint table are written from the code; a change to what a
user or an assistant sees therefore shows up in the diff of the document, in review.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts import gen_docs

ROOT = Path(__file__).resolve().parent.parent


def test_gen_docs_check_passes_on_the_checked_in_documents() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_generator_is_covered_by_the_check() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in gen_docs.expected_files()}
    assert names == {
        "docs/tools.md",
        "docs/selectors.md",
        "docs/configuration.md",
        "README.md",
        "docs/openapi.json",
        "docs/rest-api.md",
    }


def test_a_stale_or_missing_document_is_named(tmp_path: Path) -> None:
    current, stale, missing = tmp_path / "current.md", tmp_path / "stale.md", tmp_path / "missing.md"
    current.write_text("same\n", encoding="utf-8")
    stale.write_text("old\n", encoding="utf-8")
    expected = {current: "same\n", stale: "new\n", missing: "new\n"}
    assert gen_docs.stale_files(expected) == [stale, missing]
