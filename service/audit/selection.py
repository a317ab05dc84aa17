"""What makes a visit, in SQL both engines run: which resources belong to a visit, how they are
keyed, and the cheap text pre-filter in front of the hooks' relevance gate.

A visit is an encounter (resources that name it, plus the Encounter itself). A dated resource
that names no encounter joins its patient's encounter of that day when there is exactly one;
otherwise it makes a visit of its own per patient and date of service. Every visit also gets what
the hooks' prefetch gives: the patient's Devices and active Coverages, and the Practitioners,
PractitionerRoles, Medications and Devices its resources reference.

The pre-filter only narrows what the exact gate (`service.coding.relevance.involves_pump`) sees:
it keeps every visit with a resource that mentions any pump-related code the project knows, so a
visit it drops has nothing the gate could recognise (tests/audit checks this on the samples).
"""
from __future__ import annotations

import re

from ..coding.vocabulary import Vocabulary

VISIT_TYPES = (
    "Encounter", "Procedure", "Observation", "MedicationAdministration", "MedicationRequest",
    "ServiceRequest", "DeviceRequest", "ChargeItem", "Condition",
)
PATIENT_TYPES = ("Device", "Coverage")  # what the hooks fetch per patient (Device?patient=, Coverage?patient=&status=active)
DIRECTORY_TYPES = ("Practitioner", "PractitionerRole", "Medication", "Device")

# JSON paths (as SQL fragments over a JSON column `doc`) whose first present value is the
# resource's date; the order follows the elements facts.py reads.
DATE_PATHS = (
    "$.effectiveDateTime", "$.effectivePeriod.start", "$.performedDateTime", "$.performedPeriod.start",
    "$.occurrenceDateTime", "$.occurrencePeriod.start", "$.authoredOn", "$.recordedDate", "$.issued",
    "$.enteredDate", "$.period.start",
)
PATIENT_PATHS = ("$.subject.reference", "$.patient.reference", "$.beneficiary.reference")
ENCOUNTER_PATHS = ("$.encounter.reference", "$.context.reference")
ENCOUNTER_REF = r"Encounter/([^/]+)/?$"
LAST_SEGMENT = r"([^/]+)/?$"
TYPED_REF = r"([A-Za-z]+/[^/]+)/?$"
REFERENCE_TEXT = r'"reference"\s*:\s*"([^"]+)"'


def prefilter_tokens(vocabulary: Vocabulary) -> list[str]:
    """JSON string values without which no resource can involve a pump, kept broad on purpose (the
    exact gate decides): every code of the code table (pump services, refills, implants, systemic
    pumps), the pumpcds CodeSystem, device-type codes, and every site-mapped local code."""
    from ..coding.codetable import default_code_table
    from ..coding.terminology import PUMPCDS_SYSTEM, concepts

    activities = [c.code for c in concepts().values() if c.group == "activity"]
    return sorted({*default_code_table().codes, *activities, PUMPCDS_SYSTEM, *vocabulary.device_types,
                   *(code for (_, code) in vocabulary.site_mapping)})


def prefilter_regex(vocabulary: Vocabulary) -> str:
    """A JSON string value equal to one of the tokens (surrounding spaces allowed, as the gate trims)."""
    alternatives = "|".join(re.escape(t) for t in prefilter_tokens(vocabulary))
    return rf'"\s*({alternatives})\s*"'


def sql_text(value: object) -> str:
    """A path or setting as a SQL string literal (quotes doubled): for statements that take no parameters."""
    return "'" + str(value).replace("'", "''") + "'"
