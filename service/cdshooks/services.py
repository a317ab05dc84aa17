"""The hooks this service answers and the CDS services it offers.

`HOOKS` is the one table of what differs between hooks: the context schema, the prefetch
templates, the context keys that hold the orders being signed, what suggestions edit and what the
relevance gate needs to have seen. Everything downstream (validation, the gate, prefetch,
suggestions) reads the hook's `HookSpec`; nothing switches on a hook name. docs/extending.md says
how to add a hook.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
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


class Edits(Enum):
    """What a suggestion may change (docs/cards.md, Suggestions)."""

    DRAFT_ORDERS = "order"  # the orders being signed; the value names the wording group in cards.yaml
    CHARGE_ITEMS = "charge"  # the visit's ChargeItems


class GateSilence(Enum):
    """When the relevance gate takes "no pump content" as the answer rather than fetching more."""

    RESOURCES_SENT = "resources-sent"  # any resource was sent (the orders are the visit's work)
    WORK_SENT = "work-sent"  # a work key (procedures, charges) was sent, even as null


@dataclass(frozen=True)
class HookSpec:
    """Everything that differs between hooks, as data."""

    context_schema: str  # schemas/<name>.schema.json checks the context
    prefetch: tuple[PrefetchTemplate, ...]
    edits: Edits
    # prefetch keys that carry the visit's work: with no pump content in them the call is not about
    # a pump; when they are required and could not be fetched, the question stays open (412)
    work_keys: frozenset[str]
    gate_silence: GateSilence
    usage_requirements: str
    # context keys holding Bundles of the orders being signed (order-sign's draftOrders)
    draft_order_keys: tuple[str, ...] = ()

    def template(self, key: str) -> PrefetchTemplate | None:
        return next((t for t in self.prefetch if t.key == key), None)


_PATIENT = "{{context.patientId}}"
_ENCOUNTER = "{{context.encounterId}}"

_SHARED_PREFETCH = (
    PrefetchTemplate("device", f"Device?patient={_PATIENT}", required=True, types=("Device",)),
    PrefetchTemplate("coverage", f"Coverage?patient={_PATIENT}&status=active", types=("Coverage",)),
    PrefetchTemplate("practitioner", "Practitioner/{{userPractitionerId}}", types=("Practitioner",)),
    PrefetchTemplate("practitionerRoles", "PractitionerRole?practitioner={{userPractitionerId}}",
                     types=("PractitionerRole",)),
)

ORDER_SIGN_SPEC = HookSpec(
    context_schema="context-order-sign",
    prefetch=(
        PrefetchTemplate("procedures", f"Procedure?patient={_PATIENT}&_sort=-date&_count=50", required=True,
                         types=("Procedure",)),
        PrefetchTemplate("observations", f"Observation?patient={_PATIENT}&_sort=-date&_count=100",
                         types=("Observation",)),
        PrefetchTemplate("medicationAdministrations",
                         f"MedicationAdministration?patient={_PATIENT}&_sort=-effective-time&_count=50",
                         types=("MedicationAdministration", "Medication")),
        # Orders of the visit signed before this one (e.g. the pump check signed at check-in while
        # the refill drug is signed now): read with the drafts, so a wrong or duplicate code on them
        # is seen too. Edits are only ever suggested on the drafts being signed.
        PrefetchTemplate("orders", f"ServiceRequest?patient={_PATIENT}&status=active,completed&_sort=-authored&_count=50",
                         types=("ServiceRequest",), report_if_unavailable=False),
        *_SHARED_PREFETCH,
    ),
    edits=Edits.DRAFT_ORDERS,
    work_keys=frozenset({"procedures"}),
    gate_silence=GateSilence.RESOURCES_SENT,
    usage_requirements=("Needs the patient's implanted pump (Device) and the visit's Procedures, from prefetch "
                        "or from fhirServer with fhirAuthorization."),
    draft_order_keys=("draftOrders",),
)

ENCOUNTER_CLOSE_SPEC = HookSpec(
    context_schema="context-encounter",
    prefetch=(
        PrefetchTemplate("encounter", f"Encounter/{_ENCOUNTER}", required=True, types=("Encounter",)),
        PrefetchTemplate("procedures", f"Procedure?encounter={_ENCOUNTER}", required=True, types=("Procedure",)),
        PrefetchTemplate("observations", f"Observation?encounter={_ENCOUNTER}", types=("Observation",)),
        PrefetchTemplate("medicationAdministrations", f"MedicationAdministration?context={_ENCOUNTER}",
                         types=("MedicationAdministration", "Medication")),
        PrefetchTemplate("chargeItems", f"ChargeItem?context={_ENCOUNTER}", types=("ChargeItem",)),
        *_SHARED_PREFETCH,
    ),
    edits=Edits.CHARGE_ITEMS,
    work_keys=frozenset({"procedures", "chargeItems"}),
    gate_silence=GateSilence.WORK_SENT,
    usage_requirements=("Needs the Encounter, the patient's implanted pump (Device) and the encounter's "
                        "Procedures, from prefetch or from fhirServer with fhirAuthorization."),
)

# hook name -> spec; the configurable custom encounter-close hook (a reverse-domain name) uses
# ENCOUNTER_CLOSE_SPEC too (build_services)
HOOKS: dict[str, HookSpec] = {ORDER_SIGN: ORDER_SIGN_SPEC, ENCOUNTER_DISCHARGE: ENCOUNTER_CLOSE_SPEC}


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    spec: HookSpec

    @property
    def prefetch(self) -> tuple[PrefetchTemplate, ...]:
        return self.spec.prefetch

    @property
    def resource_context(self) -> tuple[str, ...]:
        """Context keys holding FHIR Bundles of resources (the orders being signed)."""
        return self.spec.draft_order_keys

    def template(self, key: str) -> PrefetchTemplate | None:
        return self.spec.template(key)

    def discovery_entry(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": {t.key: t.query for t in self.spec.prefetch},
            "usageRequirements": self.spec.usage_requirements,
        }


_CLOSE_DESCRIPTION = (
    "reviews the whole visit (pump, what was done, who did it, charges entered) and proposes "
    "the correct charge for the pump service, removes charges that are bundled into it and "
    "lists missing documentation."
)


def build_services(settings: Settings) -> dict[str, ServiceDefinition]:
    services = (
        ServiceDefinition(
            id=ORDER_SIGN_SERVICE_ID, hook=ORDER_SIGN, spec=HOOKS[ORDER_SIGN],
            title="Implanted drug pump visit: coding check at signing",
            description=(
                "When you sign orders for a visit to an implanted intrathecal or epidural drug pump "
                "(interrogation, reprogramming, refill), checks that the CPT code fits what was done "
                "(62367-62370, 95990/95991), flags combinations that cannot be billed together and "
                "lists documentation the note still needs."
            ),
        ),
        ServiceDefinition(
            id=ENCOUNTER_DISCHARGE_SERVICE_ID, hook=ENCOUNTER_DISCHARGE, spec=HOOKS[ENCOUNTER_DISCHARGE],
            title="Implanted drug pump visit: coding check at encounter discharge",
            description="When a pump-management encounter is discharged, " + _CLOSE_DESCRIPTION,
        ),
        ServiceDefinition(
            id=ENCOUNTER_CLOSE_SERVICE_ID, hook=settings.encounter_close_hook, spec=HOOKS[ENCOUNTER_DISCHARGE],
            title="Implanted drug pump visit: coding check at encounter close",
            description="When a pump-management encounter is closed (custom hook), " + _CLOSE_DESCRIPTION,
        ),
    )
    return {s.id: s for s in services}


def service_for_hook(services: dict[str, ServiceDefinition], hook: str) -> ServiceDefinition | None:
    """The one service registered for this hook (ids are unique and so are hooks)."""
    return next((s for s in services.values() if s.hook == hook), None)
