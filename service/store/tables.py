"""Audit and feedback tables, on the shared MetaData of `schema.py`.

Timestamps are naive UTC (`DateTime` without zone) so SQLite and PostgreSQL store the same thing.
No column holds patient data: audit rows carry ids and codes only.
"""
from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text

from .schema import metadata

schema_version = Table(
    "pumpcds_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", DateTime, nullable=False),
)

audit_record = Table(
    "audit_record",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False),
    Column("hook_instance", String(200)),
    Column("service_id", String(100), nullable=False),
    Column("status", Integer, nullable=False),
    Column("rule_ids", JSON, nullable=False),
    Column("codes_recommended", JSON, nullable=False),
    Column("card_uuids", JSON, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("fhir_calls", Integer, nullable=False),
    Column("fhir_failures", Integer, nullable=False),
    Index("ix_audit_record_created_at", "created_at"),
    Index("ix_audit_record_hook_instance", "hook_instance"),
)

audit_card = Table(
    "audit_card",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_id", Integer, ForeignKey("audit_record.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(100), nullable=False),
    Column("rule_id", String(100)),  # NULL: card without the pumpcds extension (rule unknown)
    Column("rule_version", String(50)),
    Column("suggestion_uuids", JSON, nullable=False),
    Index("ix_audit_card_card_uuid", "card_uuid"),
    Index("ix_audit_card_created_at", "created_at"),
)

feedback_item = Table(
    "feedback_item",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime, nullable=False),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(200), nullable=False),
    Column("card_known", Boolean, nullable=False),
    Column("rule_id", String(100)),
    Column("rule_version", String(50)),
    Column("outcome", String(20), nullable=False),
    Column("accepted_suggestions", JSON, nullable=False),
    Column("override_reason_code", String(200)),
    Column("override_reason_system", String(500)),
    Column("override_reason_display", String(500)),
    Column("override_comment", Text),
    Column("outcome_timestamp", String(64), nullable=False),  # as sent by the client
    Column("outcome_at", DateTime),  # parsed, UTC; NULL when the client's value does not parse
    Index("ix_feedback_item_card_uuid", "card_uuid"),
    Index("ix_feedback_item_received_at", "received_at"),
)
