"""Human-readable pages served by the service (documentation checklists live here, issue 4)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("docs", __name__)
