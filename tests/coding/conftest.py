from __future__ import annotations

import pytest

from service.coding.cms import load_tables
from service.coding.codetable import default_code_table
from service.coding.engine import PayerProfiles, RuleSet
from service.coding.rulebook import RuleBook
from service.config import load_settings


@pytest.fixture(scope="session")
def ruleset() -> RuleSet:
    """The shipped rule data with the synthetic CMS files (what the service runs with by default)."""
    settings = load_settings(environ={})
    return RuleSet(RuleBook.load(), default_code_table(), load_tables(settings), PayerProfiles.load("conservative"))
