"""Summaries and labels are kept per distinct value of what they read, and say exactly what a
fresh render would; a template that includes another is always rendered afresh."""
from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

from service.cdshooks.cardtemplates import CardTemplates, Remembered, _remembered, cards_dir, sample_context
from service.config import load_settings

CONTEXTS = [
    sample_context(code=code, replaces=replaces, modifiers=mods, units=units)
    for code in ("62369", "62370", "95990")
    for replaces in ([], ["95990"], ["62367", "95991"])
    for mods in ([], ["25"])
    for units in (None, 1, 3)
]


@pytest.fixture(scope="module")
def templates() -> CardTemplates:
    return CardTemplates.load(cards_dir(load_settings(environ={})))


def test_every_phrase_and_summary_says_what_a_fresh_render_says(templates: CardTemplates) -> None:
    checked = 0
    for key, phrase in templates.phrases.items():
        assert isinstance(phrase, Remembered) and phrase.names is not None, key
        for ctx in CONTEXTS * 2:  # the second pass is answered from what was kept
            assert phrase.render(ctx) == phrase.template.render(ctx), key
            checked += 1
    for rt in templates.rules.values():
        for summary in rt.summary.values():
            assert isinstance(summary, Remembered)
            for ctx in CONTEXTS * 2:
                ctx = {**ctx, "rule": {**ctx["rule"], "id": rt.rule_id}}
                assert summary.render(ctx) == summary.template.render(ctx), rt.rule_id
                checked += 1
    assert checked > 1000


def test_a_value_the_template_reads_changes_the_text_one_it_does_not_read_does_not_matter() -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    source = "Code {{ code }}{% if units %} x {{ units }}{% endif %}"
    phrase = _remembered(env, source, env.from_string(source))
    assert phrase.names == ("code", "units")
    assert phrase.render({"code": "62369", "units": 2, "evidence": [1]}) == "Code 62369 x 2"
    assert phrase.render({"code": "62369", "units": 3, "evidence": [2]}) == "Code 62369 x 3"
    assert phrase.render({"code": "62370", "units": 2, "evidence": [3]}) == "Code 62370 x 2"
    assert len(phrase._texts) == 3


def test_a_template_that_includes_another_is_not_remembered(tmp_path: Path) -> None:
    (tmp_path / "part.j2").write_text("{{ hidden }}")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)))
    source = "{{ code }} {% include 'part.j2' %}"
    phrase = _remembered(env, source, env.from_string(source))
    assert phrase.names is None
    assert phrase.render({"code": "1", "hidden": "a"}) == "1 a"
    assert phrase.render({"code": "1", "hidden": "b"}) == "1 b"


def _varied_contexts(rule_id: str) -> list[dict]:
    rows = [{"observed": "reservoir volume 2 mL *before*", "reference": "procedure record", "date": "2026-11-20"},
            {"observed": "alarm | low [battery]", "reference": "recorded result", "date": None}]
    out = []
    for kind in ("replace-code", "recommended-code", "drop-code", "missing-documentation", "warning"):
        for evidence in ([], rows[:1], rows):
            for missing in ([], [{"code": "doc-visit-date", "display": "Date of the visit"},
                                 {"code": "doc-alarm-status", "display": "Alarm <status>"}]):
                ctx = sample_context(kind=kind, evidence=evidence, evidence_total=len(evidence), missing=missing)
                out.append({**ctx, "rule": {**ctx["rule"], "id": rule_id}})
    return out


def test_every_detail_has_its_partials_inlined_and_says_the_same(templates: CardTemplates) -> None:
    """Details are compiled with their partials written in (no include left to look up at render
    time) and read exactly as the templates with includes do, for many shapes of finding."""
    from service.cdshooks.cardtemplates import _env, _tidy

    md_env = _env(templates.root / "partials", markdown=True)
    for rule_id, rt in templates.rules.items():
        spec = yaml.safe_load(rt.path.read_text())
        for kind, loaded in rt.detail.items():
            assert "get_template" not in loaded.root_render_func.__code__.co_names, (rule_id, kind)
            source = spec["detail"] if isinstance(spec["detail"], str) else spec["detail"][kind]
            with_includes = md_env.from_string(source)
            for ctx in _varied_contexts(rule_id):
                assert _tidy(loaded.render(ctx)) == _tidy(with_includes.render(ctx)), (rule_id, kind, ctx["kind"])


def test_a_partial_that_would_read_differently_is_left_as_an_include(tmp_path: Path) -> None:
    import shutil

    from service.cdshooks.cardtemplates import _inline_includes

    root = tmp_path / "cards"
    shutil.copytree(cards_dir(load_settings(environ={})), root)
    (root / "partials" / "rule.md.j2").write_text("{%- if rule %}Rule {{ rule.id }}{% endif %}\n")  # whitespace control
    source = 'Text.\n{% include "rule.md.j2" %}\n'
    assert _inline_includes(source, root / "partials") == source
    loaded = CardTemplates.load(root)
    assert "Rule SEL-MATRIX" in loaded.render("SEL-MATRIX", "detail", "replace-code",
                                              {**sample_context(), "rule": {**sample_context()["rule"], "id": "SEL-MATRIX"}})


def test_numbers_of_other_types_are_not_taken_for_each_other() -> None:
    env = jinja2.Environment()
    phrase = _remembered(env, "x {{ units }}", env.from_string("x {{ units }}"))
    assert [phrase.render({"units": u}) for u in (1, 1.0, True, 1)] == ["x 1", "x 1.0", "x True", "x 1"]
