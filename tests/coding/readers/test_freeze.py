"""From the notes to PumpVisit: chosen codes and units, activities, documentation elements."""
from __future__ import annotations

import datetime as dt

from service.coding.codetable import default_code_table
from service.coding.readers.freeze import freeze
from service.coding.readers.notes import VisitNotes
from service.coding.visit import Pump

DOS = dt.date(2026, 11, 20)


def frozen(notes: VisitNotes):
    return freeze(notes, default_code_table(), hook="encounter-discharge", date_of_service=DOS, pump=Pump(),
                  performers=(), drug=None, payer_ids=(), payer_names=())


def test_units_come_from_the_charges_rounded_up() -> None:
    notes = VisitNotes()
    key = ("hcpcs", "J0475")
    notes.code_carriers[key] += [("ServiceRequest/sr", "billed"), ("ChargeItem/c1", "billed"), ("ChargeItem/c2", "billed"),
                                 ("Procedure/p", "record")]
    notes.code_units[key].update({"ServiceRequest/sr": 9.0, "ChargeItem/c1": 1.5, "ChargeItem/c2": 1.0, "Procedure/p": 1.0})
    notes.code_modifiers[key] += ["JW", "JW"]
    code = frozen(notes).code("J0475")
    assert code is not None and (code.units, code.modifiers, code.billed) == (3, ("JW",), True)
    assert code.carriers == ("ServiceRequest/sr", "ChargeItem/c1", "ChargeItem/c2", "Procedure/p")


def test_without_a_recorded_activity_the_chosen_pump_code_stands_for_it() -> None:
    notes = VisitNotes()
    notes.code_carriers[("cpt", "62370")].append(("ChargeItem/c", "billed"))
    notes.code_units[("cpt", "62370")]["ChargeItem/c"] = 1.0
    visit = frozen(notes)
    assert (visit.activity_source, visit.analysed, visit.refilled, visit.reprogramming_recorded) == ("chosen-code", True, True, True)
    assert [e.observed for e in visit.evidence["activities"]] == ["no activity recorded; taken from the chosen code 62370"]


def test_documentation_elements_from_readings_changes_and_refill_details() -> None:
    notes = VisitNotes(activities={"refill"}, readings={"reservoir-volume", "volume-instilled", "residual-volume-aspirated"},
                       drug_texts=["admixture"], signed=True, documented={"doc-separate-problem"})
    visit = frozen(notes)
    assert {"doc-reservoir-status", "doc-refill-details", "doc-performer-signature"} <= visit.documented
    assert visit.analysed and visit.refilled and visit.signature == "signed" and visit.separate_problem
    assert frozen(VisitNotes(unsigned=["Observation/o"])).signature == "unsigned"
