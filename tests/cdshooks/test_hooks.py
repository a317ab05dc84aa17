"""The hook registry: every hook's spec is complete and consistent, and a hook added as data (a
`ServiceDefinition` with a spec) is served end to end without code (docs/extending.md, "Add a hook")."""
from __future__ import annotations

import json
import re

import pytest

from service.cdshooks.services import HOOKS, Edits, ServiceDefinition, build_services
from service.cdshooks.validation import SCHEMA_NAMES, load_schema
from service.config import load_settings
from tests.conftest import SAMPLES

TOKENS = re.compile(r"\{\{([^}]*)\}\}")
USER_TOKENS = {"userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"}


@pytest.mark.parametrize("hook", list(HOOKS))
def test_each_hook_spec_is_complete(hook: str) -> None:
    spec = HOOKS[hook]
    assert spec.context_schema in SCHEMA_NAMES
    schema = load_schema(spec.context_schema)
    keys = {t.key for t in spec.prefetch}
    assert len(keys) == len(spec.prefetch), "prefetch keys are unique"
    assert spec.work_keys <= keys and spec.work_keys, "the gate's work keys are prefetch keys of the hook"
    assert set(spec.draft_order_keys) <= set(schema["required"]), "draft orders are a required context field"
    context_fields = set(schema["properties"])
    for template in spec.prefetch:
        for token in TOKENS.findall(template.query):
            name = token.strip()
            # CDS Hooks 2.0 tokens: a first-level context field or one of the user tokens
            assert name in USER_TOKENS or (name.startswith("context.") and name[8:] in context_fields), token
        assert template.types, f"{template.key}: the resource types it may carry"
    assert spec.usage_requirements
    assert (spec.edits is Edits.DRAFT_ORDERS) == bool(spec.draft_order_keys)


def test_every_service_uses_a_registered_spec() -> None:
    services = build_services(load_settings(environ={}))
    assert {id(s.spec) for s in services.values()} <= {id(spec) for spec in HOOKS.values()}
    assert services["pump-visit-coding-encounter-close"].spec is HOOKS["encounter-discharge"]


def test_a_hook_added_as_data_is_served_like_its_kin(app, client) -> None:
    """A site's own encounter hook (here org.example.visit-signed) reuses the encounter spec: one
    ServiceDefinition, no code, and it answers as encounter-discharge does."""
    runtime = app.extensions["pumpcds"]
    kin = runtime.services["pump-visit-coding-encounter-discharge"]
    runtime.services["visit-signed"] = ServiceDefinition(id="visit-signed", hook="org.example.visit-signed",
                                                         title="t", description="d", spec=kin.spec)
    body = json.loads((SAMPLES / "requests" / "encounter-close-95990-and-62370-by-rn.json").read_text())
    assert body["hook"] == "encounter-discharge"
    want = client.post("/cds-services/pump-visit-coding-encounter-discharge", json=body).get_json()["cards"]
    got = client.post("/cds-services/visit-signed", json={**body, "hook": "org.example.visit-signed"}).get_json()["cards"]
    assert want and [c["summary"] for c in got] == [c["summary"] for c in want]
    listed = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    assert listed["visit-signed"]["prefetch"] == listed["pump-visit-coding-encounter-discharge"]["prefetch"]
