"""docs/cds-hooks-conformance.md covers every service requirement and names tests that exist."""
from __future__ import annotations

import csv
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cds-hooks-conformance.md"
REQUIREMENTS = Path(__file__).with_name("spec_requirements") / "cds-hooks-2.0-requirements.tsv"
LEVELS = {"SHALL", "SHALL NOT", "SHOULD", "SHOULD NOT"}


def doc_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            rows[cells[0]] = (cells[1], cells[3])
    return rows


def test_every_service_requirement_is_traced():
    import pytest

    if not REQUIREMENTS.exists():
        pytest.skip(f"requirement list not found at {REQUIREMENTS}")
    with REQUIREMENTS.open() as fh:
        wanted = {row[0]: row[3] for row in csv.reader(fh, delimiter="\t") if "Service" in row[4] and row[3] in LEVELS}
    rows = doc_rows()
    missing = sorted(set(wanted) - set(rows), key=int)
    assert not missing, f"requirements without a row in {DOC.name}: {missing}"
    wrong_level = {k: (rows[k][0], v) for k, v in wanted.items() if rows[k][0] != v}
    assert not wrong_level


def test_every_named_test_exists():
    for req, (_, evidence) in doc_rows().items():
        path, _, name = evidence.partition("::")
        source = (ROOT / path).read_text()
        assert re.search(rf"^def {re.escape(name)}\b", source, re.M), f"req {req}: {evidence} not found"
