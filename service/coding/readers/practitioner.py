"""Practitioner and PractitionerRole: who did the work and who supervised, with their role
(physician, QHP, clinical staff) from the role's NUCC/SNOMED CT code or the practitioner's
qualification."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from ...fhir.jsonview import JSON, child, items, reference_id, resource_id, text
from ..visit import Performer
from .notes import VisitNotes
from .terms import Terms

Role = tuple[str | None, str | None]  # (role, credential)
RANK = {"physician": 0, "qhp": 1, "staff": 2}


def performers(notes: VisitNotes, terms: Terms, practitioners: list[JSON], roles: list[JSON],
               usable: Callable[[JSON], bool]) -> tuple[Performer, ...]:
    """The visit's performers: those the procedures and administrations name; the orders' and
    charges' performers only when no one else did the work."""
    by_id = {rid: p for p in practitioners if (rid := resource_id(p))}
    role_by_id = {rid: r for r in roles if (rid := resource_id(r))}
    roles_of: dict[str, list[JSON]] = defaultdict(list)
    for r in role_by_id.values():
        pid = reference_id(r.get("practitioner"))
        if pid:
            roles_of[pid].append(r)
    refs = dict(notes.performer_refs)
    if not any(not supervising for supervising in refs.values()):
        for ref in notes.order_performer_refs:
            refs.setdefault(ref, False)
    out = []
    for ref, supervising in refs.items():
        role, credential = _role(ref, by_id, role_by_id, roles_of, terms, usable)
        performer = Performer(ref, role, credential, supervising)
        out.append(performer)
        notes.note("supervisor" if supervising else "performer", ref, performer.describe())
        if role is not None and not supervising:
            notes.documented.add("doc-performer-attestation")
        if supervising and role == "physician":
            notes.documented.add("doc-supervising-physician")
    return tuple(out)


def _role(ref: str, practitioners: dict[str, JSON], roles: dict[str, JSON], roles_of: dict[str, list[JSON]],
          terms: Terms, usable: Callable[[JSON], bool]) -> Role:
    rtype, _, rid = ref.rstrip("/").rpartition("/")
    rtype = rtype.split("/")[-1]
    role: Role = (None, None)
    if rtype == "PractitionerRole" and rid in roles and usable(roles[rid]):
        role = of_role(roles[rid], terms)
        pid = reference_id(roles[rid].get("practitioner"))
        if role[0] is None and pid in practitioners and usable(practitioners[pid]):
            role = of_practitioner(practitioners[pid], terms)
    elif rtype == "Practitioner":
        for r in roles_of.get(rid, ()):
            if usable(r):
                role = of_role(r, terms)
                if role[0]:
                    break
        if role[0] is None and rid in practitioners and usable(practitioners[rid]):
            role = of_practitioner(practitioners[rid], terms)
    return role


def of_role(role: JSON, terms: Terms) -> Role:
    """From the role's code or specialty: NUCC taxonomy (a physician prefix counts) or SNOMED CT."""
    vocab = terms.vocab
    for concept in items(role.get("code")) + items(role.get("specialty")):
        for system, code, _ in terms.codings(concept):
            if system == "nucc":
                if code in vocab.qual_nucc:
                    q = vocab.qual_nucc[code]
                    return q["role"], q["label"]
                if code.startswith(vocab.nucc_physician_prefix):
                    return "physician", "physician"
            elif system == "snomed" and code in vocab.qual_snomed:
                q = vocab.qual_snomed[code]
                return q["role"], q["label"]
    return None, None


def of_practitioner(p: JSON, terms: Terms) -> Role:
    """From the qualifications (v2-0360 degree codes or their text): the highest role named."""
    vocab = terms.vocab
    ranked: list[tuple[int, str, str]] = []
    for q in items(p.get("qualification")):
        concept = child(q, "code")
        for system, code, _ in terms.codings(concept):
            if system == "v2_0360" and code.upper() in vocab.qual_v2:
                spec = vocab.qual_v2[code.upper()]
                ranked.append((RANK[spec["role"]], spec["role"], spec["label"]))
        label = (text(concept.get("text")) or "").strip().upper() if concept is not None else ""
        if label in vocab.qual_text:
            role = vocab.qual_text[label]
            ranked.append((RANK[role], role, label))
    if not ranked:
        return None, None
    _, role, label = min(ranked)
    return role, label
