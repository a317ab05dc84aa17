"""All tables of the service's database, on one MetaData so one migration step creates them all."""
from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
