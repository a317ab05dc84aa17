"""The `check` evaluators of rules.yaml, one module per family, registered by name.

Importing this package registers every check (registry.REGISTRY); a rule in rules.yaml names its
check and gives the params the check declares. docs/extending.md says how to add one.
"""
from __future__ import annotations

from . import data_quality, diagnosis, documentation, drug, em, ncci, selection
from .registry import REGISTRY, Check, Param, Role, Stage

__all__ = ["REGISTRY", "Check", "Param", "Role", "Stage", "data_quality", "diagnosis", "documentation", "drug", "em",
           "ncci", "selection"]
