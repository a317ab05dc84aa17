"""One reader per FHIR resource type: each takes facts from the JSON of its resources into the
visit's `VisitNotes`; `service.coding.facts.VisitReader` runs them in order and `freeze` turns the
notes into the `PumpVisit` the rules read (docs/fhir-input.md says what each reads)."""
