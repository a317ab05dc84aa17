"""Contract test: schemathesis generates valid and invalid inputs from /openapi.json; none may cause a 5xx."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from schemathesis.generation import GenerationMode

from service.app import create_app
from service.config import load_settings

_APP = None


def _app():
    global _APP
    if _APP is None:
        import tempfile

        db = tempfile.mkdtemp(prefix="pumpcds-contract-")
        _APP = create_app(load_settings(environ={}, database_url=f"sqlite:///{db}/pumpcds.db"))
    return _APP


def _cases():
    """Valid inputs for every operation; invalid ones where there is an input to get wrong."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", _app())
    cases = []
    for result in schema.get_all_operations():
        op = result.ok()
        cases.append(pytest.param(op, GenerationMode.POSITIVE, id=f"{op.label} valid"))
        if op.body or list(op.iter_parameters()):
            cases.append(pytest.param(op, GenerationMode.NEGATIVE, id=f"{op.label} invalid"))
    return cases


@pytest.mark.parametrize(("operation", "mode"), _cases())
def test_no_generated_input_causes_a_server_error(operation, mode):
    @given(case=operation.as_strategy(generation_mode=mode))
    @hyp_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case):
        response = case.call()
        assert response.status_code < 500, (response.status_code, response.text[:500])
        if response.status_code >= 400:
            assert response.json()["resourceType"] == "OperationOutcome"

    run()


def test_openapi_document_is_3_1_and_lists_every_endpoint(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    assert {"/cds-services", "/cds-services/{id}", "/cds-services/{id}/feedback", "/healthz", "/readyz"} <= set(doc["paths"])


def test_openapi_declares_the_client_jwt_on_every_cds_endpoint(client) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["components"]["securitySchemes"]["cdsHooksJwt"]["bearerFormat"] == "JWT"
    for path in ("/cds-services", "/cds-services/{id}", "/cds-services/{id}/feedback"):
        operation = next(iter(doc["paths"][path].values()))
        assert operation["security"] == [{"cdsHooksJwt": []}]
        assert {"401", "503"} <= set(operation["responses"])
