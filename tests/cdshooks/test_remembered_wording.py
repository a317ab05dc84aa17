"""Summaries and labels are kept per distinct value of what they read, and say exactly what a
fresh render would; a template that includes another is always rendered afresh."""
from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

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
