from __future__ import annotations

from pathlib import Path

import pytest

from service.coding.codetable import default_code_table
from service.config import ConfigError


def test_without_a_licensed_file_only_our_own_summaries_are_shown() -> None:
    table = default_code_table()
    assert table.descriptors == {}
    assert table.description("62369") == table.get("62369").summary


def test_a_configured_descriptor_file_replaces_the_summaries(tmp_path: Path) -> None:
    licensed = tmp_path / "cpt.tsv"
    licensed.write_text("code\tdescriptor\n62369\tLICENSED DESCRIPTOR TEXT\n")
    table = default_code_table().with_descriptors(str(licensed))
    assert table.description("62369") == "LICENSED DESCRIPTOR TEXT"
    assert table.description("62367") == table.get("62367").summary


def test_a_missing_descriptor_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cpt_descriptor_path"):
        default_code_table().with_descriptors("/nonexistent/cpt.csv")


def test_checklists_start_with_the_common_elements() -> None:
    table = default_code_table()
    for code in table.pump_family_codes():
        elements = [c.code for c in table.checklist(code)]
        assert elements[: len(table.common_documentation)] == list(table.common_documentation)
        assert len(elements) == len(set(elements))
