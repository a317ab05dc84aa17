"""The CDS services this deployment offers: what discovery lists and what each call must carry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Settings

ORDER_SIGN = "order-sign"
ENCOUNTER_DISCHARGE = "encounter-discharge"

# One service per hook, each with its own id: discovery lists every id once (the sandbox keys
# services by URL, so two entries with one id lose one of them). All share one engine.
ORDER_SIGN_SERVICE_ID = "pump-visit-coding-order-sign"
ENCOUNTER_DISCHARGE_SERVICE_ID = "pump-visit-coding-encounter-discharge"
ENCOUNTER_CLOSE_SERVICE_ID = "pump-visit-coding-encounter-close"  # the configurable custom hook


@dataclass(frozen=True)
class PrefetchTemplate:
    key: str
    query: str
    # Without this data the service cannot code the visit: 412 when neither prefetch nor
    # the FHIR server can supply it. Optional data only degrades the answer (and says so).
    required: bool = False
    # Resource types this key may carry; anything else under the key is reported and ignored.
    types: tuple[str, ...] = ()
    # Whether a card says so when this optional data could not be had. False only for context
    # that earlier versions never read, so its absence cannot make an answer worse than before.
    report_if_unavailable: bool = True


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    required_context: tuple[str, ...]
    prefetch: tuple[PrefetchTemplate, ...]
    usage_requirements: str | None = None
    # context fields holding FHIR Bundles of resources (order-sign's draftOrders)
    resource_context: tuple[str, ...] = field(default=())

    def discovery_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": {t.key: t.query for t in self.prefetch},
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry

    def template(self, key: str) -> PrefetchTemplate | None:
        return next((t for t in self.prefetch if t.key == key), None)


_PATIENT = "{{context.patientId}}"
_ENCOUNTER = "{{context.encounterId}}"

_SHARED_PREFETCH = (
    PrefetchTemplate("device", f"Device?patient={_PATIENT}", required=True, types=("Device",)),
    PrefetchTemplate(
        "coverage", f"Coverage?patient={_PATIENT}&status=active", types=("Coverage",)
    ),
    PrefetchTemplate(
        "practitioner", "Practitioner/{{userPractitionerId}}", types=("Practitioner",)
    ),
    PrefetchTemplate(
        "practitionerRoles",
        "PractitionerRole?practitioner={{userPractitionerId}}",
        types=("PractitionerRole",),
    ),
)

_ORDER_SIGN_PREFETCH = (
    PrefetchTemplate(
        "procedures",
        f"Procedure?patient={_PATIENT}&_sort=-date&_count=50",
        required=True,
        types=("Procedure",),
    ),
    PrefetchTemplate(
        "observations",
        f"Observation?patient={_PATIENT}&_sort=-date&_count=100",
        types=("Observation",),
    ),
    PrefetchTemplate(
        "medicationAdministrations",
        f"MedicationAdministration?patient={_PATIENT}&_sort=-effective-time&_count=50",
        types=("MedicationAdministration", "Medication"),
    ),
    # Orders of the visit signed before this one (e.g. the pump check signed at check-in while
    # the refill drug is signed now): read with the drafts, so a wrong or duplicate code on them
    # is seen too. Edits are only ever suggested on the drafts being signed.
    PrefetchTemplate(
        "orders",
        f"ServiceRequest?patient={_PATIENT}&status=active,completed&_sort=-authored&_count=50",
        types=("ServiceRequest",),
        report_if_unavailable=False,
    ),
    *_SHARED_PREFETCH,
)

_ENCOUNTER_CLOSE_PREFETCH = (
    PrefetchTemplate("encounter", f"Encounter/{_ENCOUNTER}", required=True, types=("Encounter",)),
    PrefetchTemplate(
        "procedures", f"Procedure?encounter={_ENCOUNTER}", required=True, types=("Procedure",)
    ),
    PrefetchTemplate(
        "observations", f"Observation?encounter={_ENCOUNTER}", types=("Observation",)
    ),
    PrefetchTemplate(
        "medicationAdministrations",
        f"MedicationAdministration?context={_ENCOUNTER}",
        types=("MedicationAdministration", "Medication"),
    ),
    PrefetchTemplate(
        "chargeItems", f"ChargeItem?context={_ENCOUNTER}", types=("ChargeItem",)
    ),
    *_SHARED_PREFETCH,
)


def build_services(settings: Settings) -> dict[str, ServiceDefinition]:
    order_sign = ServiceDefinition(
        id=ORDER_SIGN_SERVICE_ID,
        hook=ORDER_SIGN,
        title="Implanted drug pump visit: coding check at signing",
        description=(
            "When you sign orders for a visit to an implanted intrathecal or epidural drug pump "
            "(interrogation, reprogramming, refill), checks that the CPT code fits what was done "
            "(62367-62370, 95990/95991), flags combinations that cannot be billed together and "
            "lists documentation the note still needs."
        ),
        required_context=("userId", "patientId", "draftOrders"),
        prefetch=_ORDER_SIGN_PREFETCH,
        resource_context=("draftOrders",),
        usage_requirements=(
            "Needs the patient's implanted pump (Device) and the visit's Procedures, from prefetch "
            "or from fhirServer with fhirAuthorization."
        ),
    )
    close_description = (
        "reviews the whole visit (pump, what was done, who did it, charges entered) and proposes "
        "the correct charge for the pump service, removes charges that are bundled into it and "
        "lists missing documentation."
    )
    close_requirements = (
        "Needs the Encounter, the patient's implanted pump (Device) and the encounter's "
        "Procedures, from prefetch or from fhirServer with fhirAuthorization."
    )
    encounter_discharge = ServiceDefinition(
        id=ENCOUNTER_DISCHARGE_SERVICE_ID,
        hook=ENCOUNTER_DISCHARGE,
        title="Implanted drug pump visit: coding check at encounter discharge",
        description="When a pump-management encounter is discharged, " + close_description,
        required_context=("userId", "patientId", "encounterId"),
        prefetch=_ENCOUNTER_CLOSE_PREFETCH,
        usage_requirements=close_requirements,
    )
    encounter_close = ServiceDefinition(
        id=ENCOUNTER_CLOSE_SERVICE_ID,
        hook=settings.encounter_close_hook,
        title="Implanted drug pump visit: coding check at encounter close",
        description="When a pump-management encounter is closed (custom hook), " + close_description,
        required_context=("userId", "patientId", "encounterId"),
        prefetch=_ENCOUNTER_CLOSE_PREFETCH,
        usage_requirements=close_requirements,
    )
    return {s.id: s for s in (order_sign, encounter_discharge, encounter_close)}


def service_for_hook(services: dict[str, ServiceDefinition], hook: str) -> ServiceDefinition | None:
    """The one service registered for this hook (ids are unique and so are hooks)."""
    return next((s for s in services.values() if s.hook == hook), None)
