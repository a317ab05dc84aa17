"""The calls the CDS Hooks sandbox makes, made as a browser makes them (for tests).

Written from how the sandbox (cds-hooks/sandbox) behaves as a client, not from its code:
FHIR `/metadata` then `/Patient`, the patient and its Conditions, discovery with a JWT, and at
"Sign Order" the prefetch (instance reads by GET, searches by `POST {type}/_search` with a form
body, falling back to GET; templates with unresolved tokens skipped; failures left out) followed
by the service call. Every cross-origin call is preceded by the CORS preflight a browser would
send and its answer is checked like a browser checks it: a call the browser would block fails.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

import requests

from tests.security.tokens import mint

ORIGIN = "https://sandbox.cds-hooks.org"
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_HEADER = {"kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f", "jku": "https://sandbox.cds-hooks.org/.well-known/jwks.json"}
USER = "Practitioner/COREPRACTITIONER1"
_SAFE_HEADERS = {"accept", "accept-language", "content-language"}
_SIMPLE_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}


class BlockedByBrowser(AssertionError):
    """The browser would not let the page see this answer (CORS)."""


@dataclass
class Call:
    method: str
    url: str
    status: int
    preflighted: bool


def sandbox_medication_request(patient_id: str, medication: tuple[str, str] | None = None,
                               today: dt.date | None = None) -> dict[str, Any]:
    """The draft order of the sandbox's Rx Sign screen for an R4 server (`createFhirResource`):
    with no drug chosen only id, status, subject and authoredOn; with one chosen also the default
    instructions (1 pill daily, 30 days' supply), `intent`, and `category` as a single object."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "request-123",
        "status": "draft",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": (today or dt.date.today()).isoformat(),
    }
    if medication is not None:
        code, name = medication
        resource["dosageInstruction"] = [{
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "{pill}"}}],
        }]
        resource["dispenseRequest"] = {"expectedSupplyDuration": {
            "value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}
        resource["intent"] = "order"
        resource["category"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": "community"}]}
        resource["medicationCodeableConcept"] = {
            "text": name, "coding": [{"display": name, "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}]}
    return resource


@dataclass
class SandboxClient:
    fhir_base: str
    discovery_url: str
    origin: str = ORIGIN
    calls: list[Call] = field(default_factory=list)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)  # service URL -> definition
    fhir_version: str | None = None
    session: requests.Session = field(default_factory=requests.Session)

    # -- the browser's part -------------------------------------------------------------------
    def _needs_preflight(self, method: str, headers: dict[str, str]) -> bool:
        if method not in ("GET", "POST", "HEAD"):
            return True
        for name, value in headers.items():
            lower = name.lower()
            if lower == "content-type":
                if value.split(";")[0].strip().lower() not in _SIMPLE_TYPES:
                    return True
            elif lower not in _SAFE_HEADERS:
                return True
        return False

    def _allowed(self, resp: requests.Response) -> bool:
        return resp.headers.get("Access-Control-Allow-Origin") in ("*", self.origin)

    def fetch(self, method: str, url: str, *, headers: dict[str, str], **kwargs: Any) -> requests.Response:
        """One call as a browser page makes it: preflight when the browser would, then the call."""
        preflighted = self._needs_preflight(method, headers)
        if preflighted:
            wanted = sorted(h.lower() for h in headers if h.lower() not in _SAFE_HEADERS
                            and not (h.lower() == "content-type" and headers[h].split(";")[0] in _SIMPLE_TYPES))
            pre = self.session.options(url, timeout=10, headers={
                "Origin": self.origin, "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": ",".join(wanted)})
            allowed_methods = {m.strip().upper() for m in pre.headers.get("Access-Control-Allow-Methods", "").split(",")}
            allowed_headers = {h.strip().lower() for h in pre.headers.get("Access-Control-Allow-Headers", "").split(",")}
            if not (200 <= pre.status_code < 300 and self._allowed(pre) and method in allowed_methods
                    and ("*" in allowed_headers or set(wanted) <= allowed_headers)):
                raise BlockedByBrowser(f"preflight of {method} {url} refused: {pre.status_code} {dict(pre.headers)}")
        resp = self.session.request(method, url, headers={"Origin": self.origin, **headers}, timeout=30, **kwargs)
        self.calls.append(Call(method, url, resp.status_code, preflighted))
        if not self._allowed(resp):
            raise BlockedByBrowser(f"{method} {url} answered {resp.status_code} without Access-Control-Allow-Origin")
        return resp

    # -- what the sandbox does ----------------------------------------------------------------
    def connect_fhir_server(self) -> dict[str, Any]:
        """'Change FHIR Server': /metadata must answer, then /Patient must not be a 401."""
        meta = self.fetch("GET", f"{self.fhir_base}/metadata", headers={"Accept": "application/json"})
        meta.raise_for_status()
        statement = meta.json()
        self.fhir_version = statement["fhirVersion"]
        patients = self.fetch("GET", f"{self.fhir_base}/Patient", headers={"Accept": "application/json"})
        assert patients.status_code != 401
        return statement

    def patient_list(self) -> list[dict[str, str]]:
        """The patient picker: every Patient's id, 'given family' and birth date."""
        bundle = self.fetch("GET", f"{self.fhir_base}/Patient", headers={"Accept": "application/json+fhir"}).json()
        out = []
        for entry in bundle["entry"]:
            name = entry["resource"]["name"][0]
            out.append({"id": entry["resource"]["id"], "name": f"{' '.join(name['given'])} {name['family']}",
                        "dob": entry["resource"].get("birthDate", "")})
        return out

    def open_patient(self, patient_id: str) -> dict[str, Any]:
        resp = self.fetch("GET", f"{self.fhir_base}/Patient/{patient_id}", headers={"Accept": "application/json+fhir"})
        resp.raise_for_status()
        patient = resp.json()
        assert patient["resourceType"] == "Patient"
        conditions = self.fetch("GET", f"{self.fhir_base}/Condition?patient={patient_id}",
                                headers={"Accept": "application/json+fhir"})
        assert conditions.status_code == 200 and conditions.json()["resourceType"] == "Bundle"
        return patient

    def discover(self) -> dict[str, dict[str, Any]]:
        token = mint(aud=self.discovery_url, iss=SANDBOX_ISS, headers=SANDBOX_HEADER)
        resp = self.fetch("GET", self.discovery_url, headers={"Accept": "application/json", "Authorization": f"Bearer {token}"})
        resp.raise_for_status()
        services = resp.json()["services"]
        assert services, "the sandbox counts an empty service list as a failure"
        self.services = {f"{self.discovery_url}/{s['id']}": s for s in services}
        return self.services

    def _prefetch(self, templates: dict[str, str], context: dict[str, Any]) -> dict[str, Any]:
        user_type, _, user_id = str(context.get("userId", "")).partition("/")
        tokens = {f"context.{k}": str(v) for k, v in context.items() if isinstance(v, (str, int, float, bool))}
        if user_type == "Practitioner":
            tokens["userPractitionerId"] = user_id
        out: dict[str, Any] = {}
        for key, template in templates.items():
            query = re.sub(r"\{\{\s*([^}]+?)\s*\}\}", lambda m: tokens.get(m.group(1), m.group(0)), template)
            if re.search(r"\{\{[^}]+\}\}", query):
                continue  # unresolved token (e.g. context.encounterId): skipped
            path, _, search = query.partition("?")
            headers = {"Accept": "application/json+fhir"}
            if not search:
                resp = self.fetch("GET", f"{self.fhir_base}/{path}", headers=headers)
                if resp.ok and resp.json():
                    out[key] = resp.json()
                continue
            form = "&".join(f"{k}={quote(v, safe='')}" for k, v in parse_qsl(search, keep_blank_values=True))
            resp = self.fetch("POST", f"{self.fhir_base}/{path}/_search", data=form,
                              headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
            if not resp.ok:
                resp = self.fetch("GET", f"{self.fhir_base}/{path}?{form}", headers=headers)
            if resp.ok and resp.json():
                out[key] = resp.json()
        return out

    def sign_order(self, patient_id: str, medication: tuple[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """'Sign Order' on Rx Sign: every discovered order-sign service is prefetched for and called.
        Returns (request, response) of the (only) order-sign service."""
        assert self.fhir_version and self.fhir_version >= "4.0.0", "the sandbox sends MedicationRequest for R4"
        order_sign = [(url, s) for url, s in self.services.items() if s["hook"] == "order-sign"]
        assert len(order_sign) == 1, order_sign
        url, service = order_sign[0]
        context = {"patientId": patient_id, "userId": USER,
                   "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": sandbox_medication_request(patient_id, medication)}]}}
        request: dict[str, Any] = {"hookInstance": str(uuid.uuid4()), "hook": "order-sign", "fhirServer": self.fhir_base,
                                   "context": context}
        prefetch = self._prefetch(service.get("prefetch") or {}, {"patientId": patient_id, "userId": USER})
        if prefetch:
            request["prefetch"] = prefetch
        token = mint(aud=url, iss=SANDBOX_ISS, headers=SANDBOX_HEADER)
        resp = self.fetch("POST", url, json=request, headers={
            "Accept": "application/json", "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert resp.status_code == 200, (resp.status_code, resp.text[:500])
        return request, resp.json()

    def feedback(self, service_url: str, card: dict[str, Any]) -> int:
        """A click on the card's first suggestion (sent only when card and suggestion have uuids)."""
        suggestion = card["suggestions"][0]
        body = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": suggestion["uuid"]}],
                              "outcomeTimestamp": dt.datetime.now(dt.UTC).isoformat()}]}
        token = mint(aud=f"{service_url}/feedback", iss=SANDBOX_ISS, headers=SANDBOX_HEADER)
        resp = self.fetch("POST", f"{service_url}/feedback", json=body, headers={
            "Accept": "application/json", "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        return resp.status_code
