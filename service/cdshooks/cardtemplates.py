"""Card wording as data: the Jinja2 templates in cards/ (see cards/README.md), loaded and checked once.

    templates = CardTemplates.load(cards_dir, rule_ids)
    templates.summary(kind, context) / templates.detail(kind, context) / templates.say(key, **vars)

Everything is compiled and test-rendered at start, so a missing file, a syntax error or an unknown
variable stops the service before its first hook call, naming the file at fault.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache
import jinja2.meta
import jinja2.nodes
import yaml

from .. import yamlfiles
from ..coding.findings import FindingKind
from ..config import ConfigError, Settings

KINDS = tuple(k.value for k in FindingKind)
# Every key a finding's params may hold (service/coding/engine.py); documented in cards/README.md.
PARAM_KEYS = (
    "date_of_service", "pump", "activities", "performer", "performer_reference", "encounter_reference",
    "patient_reference", "changed_parameters", "payer", "payer_profile", "reason", "pair", "column1",
    "column2", "modifier_indicator", "file_release", "bypass_modifiers", "billed_units", "mue", "mai",
    "indicator", "indicator_value", "drug", "amount", "waste", "action",
    "candidates", "chosen", "deciding", "unknown_because", "selection_rule",
)
# Characters that would turn a FHIR value into Markdown markup (links, emphasis, HTML, table cells),
# each escaped with a backslash (one C call per value, several times cheaper than a regex).
_MD_ESCAPES = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|"})


class CardTemplateError(ConfigError):
    """A card template is missing or broken; raised at start-up, never at hook time."""


class MdSafe(str):
    """Text already made Markdown-safe by a filter: the detail finaliser leaves it alone."""


def one_line(value: Any) -> str:
    return " ".join(str(value).split())


def md_escape(value: Any) -> str:
    return one_line(value).translate(_MD_ESCAPES)


def _finalize_md(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (MdSafe, int, float)):
        return value
    return md_escape(value)


def _finalize_text(value: Any) -> Any:
    return "" if value is None else one_line(value)


def codes_filter(values: Iterable[Any] | str | None, conjunction: str = "and") -> str:
    """['62370', '62367'] -> '62370 and 62367'; three or more: 'a, b and c'."""
    if values is None:
        return ""
    items = [values] if isinstance(values, str) else [str(v) for v in values if v]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def plural_filter(word: str, n: Any, plural: str | None = None) -> str:
    try:
        count = int(n if not isinstance(n, (list, tuple)) else len(n))
    except (TypeError, ValueError):
        count = 2
    return word if count == 1 else (plural or word + "s")


def cell_filter(value: Any) -> MdSafe:
    """A Markdown table cell: escaped, one line, '-' when empty."""
    text = md_escape(value if value is not None else "")
    return MdSafe(text or "-")


def url_filter(value: Any) -> MdSafe:
    """A URL inside Markdown link parentheses: spaces, parentheses and angle brackets percent-encoded."""
    text = one_line(value or "")
    for ch, enc in ((" ", "%20"), ("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E")):
        text = text.replace(ch, enc)
    return MdSafe(text)


class ProcessBytecodeCache(jinja2.BytecodeCache):
    """Compiled file templates (partials, documentation pages) kept for the process: Jinja keys a
    bucket by the file's path and checks the source's checksum, so an edited file is compiled anew."""

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()


BYTECODE_CACHE = ProcessBytecodeCache()


def _env(root: Path | None, *, markdown: bool) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(root)) if root is not None else None
    env = jinja2.Environment(
        bytecode_cache=BYTECODE_CACHE,
        # auto_reload off: templates are read once at start; Jinja would otherwise stat every
        # included partial's file on every render
        loader=loader, auto_reload=False, undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
        trim_blocks=True, lstrip_blocks=True, finalize=_finalize_md if markdown else _finalize_text,
    )
    env.filters.update(codes=codes_filter, plural=plural_filter, cell=cell_filter, url=url_filter,
                       md=lambda v: MdSafe(md_escape(v)))
    return env


class LenientParams(dict[str, str]):
    """Finding params at hook time: a key a finding does not carry reads as empty text.
    At start-up templates are rendered with every key (PARAM_KEYS) present and strict."""

    def __missing__(self, key: str) -> str:
        return ""


def sample_context(**overrides: Any) -> dict[str, Any]:
    """A context with every variable a template may use, for the start-up test render."""
    ctx: dict[str, Any] = {
        "rule": {"id": "RULE-ID", "version": "1", "title": "Rule title", "verification": "V",
                 "verification_label": "verified", "source": "source", "url": "http://localhost/docs/rules/RULE-ID"},
        "kind": "replace-code", "severity": "warning",
        "code": "62369", "code_system": "CPT", "code_summary": "summary", "code_url": "http://localhost/docs/codes/62369",
        "replaces": ["95990"], "modifiers": ["25"], "units": 1,
        "missing": [{"code": "doc-visit-date", "display": "Date of the visit"}],
        "evidence": [{"observed": "seen", "reference": "Procedure/p1", "date": "2026-11-20"}],
        "evidence_hidden": 1, "evidence_total": 2, "why": "why",
        "params": {k: k for k in PARAM_KEYS},
    }
    ctx.update(overrides)
    return ctx


_MEMO_MAX = 2048


def _frozen(value: Any) -> Any:
    """A hashable key for a context value; numbers keep their type (1, 1.0 and True are equal keys
    in a dict but print differently)."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, (int, float, bool)):
        return (type(value), value)
    if isinstance(value, Mapping):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    raise TypeError(type(value).__name__)


class Remembered:
    """A short template whose text is kept per distinct value of the variables it reads.

    Summaries and labels read a few codes (`code`, `replaces`, `modifiers`, `units`), which repeat
    from visit to visit, and a Jinja render costs ~20 us however short the text, several per card.
    A template that includes or imports another is never remembered: the variables that one
    reads are not known here. The store is bounded (cleared when full)."""

    def __init__(self, template: jinja2.Template, names: tuple[str, ...] | None) -> None:
        self.template = template
        self.names = names
        self._texts: dict[Any, str] = {}

    def render(self, context: Mapping[str, Any]) -> str:
        if self.names is None:
            return self.template.render(context)
        try:
            key = tuple(_frozen(context.get(name)) for name in self.names)
        except TypeError:  # a value of a kind not seen at start (never from the card builder)
            return self.template.render(context)
        text = self._texts.get(key)
        if text is None:
            text = self.template.render(context)
            if len(self._texts) >= _MEMO_MAX:
                self._texts.clear()
            self._texts[key] = text
        return text


def _remembered(env: jinja2.Environment, source: str, template: jinja2.Template) -> Remembered:
    key = (env.finalize, source)
    if key not in _NAMES:
        ast = env.parse(source)
        reads_others = any(True for _ in ast.find_all((jinja2.nodes.Include, jinja2.nodes.Import,
                                                       jinja2.nodes.FromImport, jinja2.nodes.Extends)))
        _NAMES[key] = None if reads_others else tuple(sorted(jinja2.meta.find_undeclared_variables(ast)))
    return Remembered(template, _NAMES[key])


Renderable = jinja2.Template | Remembered


@dataclass(frozen=True)
class RuleTemplates:
    rule_id: str
    path: Path
    summary: Mapping[str, Renderable]  # kind or "default" -> template
    detail: Mapping[str, Renderable]

    def pick(self, part: str, kind: str) -> Renderable:
        table = self.summary if part == "summary" else self.detail
        return table.get(kind) or table["default"]


@dataclass(frozen=True)
class CardTemplates:
    root: Path
    settings: Mapping[str, Any]  # cards.yaml minus the wording tables
    rules: Mapping[str, RuleTemplates]
    phrases: Mapping[str, Renderable]  # "links.document", "suggestions.order-replace.label", ...

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def load(cls, root: Path, rule_ids: Iterable[str] | None = None) -> CardTemplates:
        root = Path(root)
        if not root.is_dir():
            raise CardTemplateError(f"cards directory not found: {root} (setting cards_dir)")
        md_env = _env(root / "partials", markdown=True)
        text_env = _env(None, markdown=False)
        general_path = root / "cards.yaml"
        general = _read_yaml(general_path)
        phrases: dict[str, Renderable] = {}
        for group in ("links", "suggestions"):
            for key, value in _flatten(general.get(group) or {}, group):
                phrases[key] = _remembered(text_env, value, _compile(text_env, value, general_path, key))
        settings = {k: v for k, v in general.items() if k not in ("links", "suggestions")}
        rules: dict[str, RuleTemplates] = {}
        for path in sorted((root / "rules").glob("*.yaml")):
            spec = _read_yaml(path)
            rule_id = spec.get("rule")
            if not isinstance(rule_id, str) or not rule_id:
                raise CardTemplateError(f"{path}: missing 'rule' (the id of the rule this file serves)")
            if rule_id in rules:
                raise CardTemplateError(f"{path}: rule {rule_id} already has templates in {rules[rule_id].path}")
            summaries = _part(text_env, spec, "summary", path)
            rules[rule_id] = RuleTemplates(
                rule_id, path,
                {kind: _remembered(text_env, _source(spec, "summary", kind), t) for kind, t in summaries.items()},
                {kind: _flattened(md_env, _source(spec, "detail", kind), t, root / "partials", path, rule_id)
                 for kind, t in _part(md_env, spec, "detail", path).items()},
            )
        if rule_ids is not None:
            wanted = set(rule_ids)
            unknown = sorted(set(rules) - wanted)
            if unknown:  # first: a typo in 'rule:' also leaves that rule without templates
                raise CardTemplateError(
                    f"{rules[unknown[0]].path}: names rule {unknown[0]}, which is not in rules.yaml")
            missing = sorted(wanted - set(rules))
            if missing:
                raise CardTemplateError(f"{root / 'rules'}: no card templates for rule(s) {', '.join(missing)}")
        templates = cls(root, settings, rules, phrases)
        templates.check()
        return templates

    def check(self) -> None:
        """Render every template once with every variable present: unknown names fail here, at start."""
        ctx = sample_context()
        # and once with nothing optional set, as a finding that only removes a code gives it
        sparse = sample_context(code=None, code_summary="", code_url=None, replaces=[], modifiers=[], units=None,
                                missing=[], evidence=[], evidence_hidden=0, evidence_total=0, params=LenientParams())
        for rt in self.rules.values():
            for part in ("summary", "detail"):
                for kind in KINDS:
                    for base in (ctx, sparse):
                        try:
                            rt.pick(part, kind).render({**base, "kind": kind, "rule": {**ctx["rule"], "id": rt.rule_id}})
                        except (jinja2.TemplateError, TypeError, ValueError) as exc:
                            raise CardTemplateError(f"{rt.path}: {part} ({kind}): {_describe(exc)}") from None
        for key, tmpl in self.phrases.items():
            for base in (ctx, sparse):
                try:
                    tmpl.render(base)
                except (jinja2.TemplateError, TypeError, ValueError) as exc:
                    raise CardTemplateError(f"{self.root / 'cards.yaml'}: {key}: {_describe(exc)}") from None

    # -- rendering ---------------------------------------------------------------------
    def render(self, rule_id: str, part: str, kind: str, context: Mapping[str, Any]) -> str:
        return _tidy(self.rules[rule_id].pick(part, kind).render(context))

    def say(self, key: str, context: Mapping[str, Any]) -> str:
        """One short phrase from cards.yaml (link labels, suggestion labels and action descriptions)."""
        return one_line(self.phrases[key].render(context))

    def setting(self, name: str, default: Any) -> Any:
        return self.settings.get(name, default)


def _tidy(text: str) -> str:
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip()  # templates may leave extra blank lines


# `{% include "x.md.j2" %}` at the start of a line, as the detail templates use their partials
_INCLUDE = re.compile(r'(?m)^[ \t]*\{%\s*include\s+"([A-Za-z0-9_.-]+)"\s*%\}(\n?)')
_WHITESPACE_CONTROL = re.compile(r"\{[%#]-|-[%#]\}")


def _inline_includes(source: str, partials: Path, depth: int = 0) -> str:
    """The source with each line-start include of a partial replaced by the partial's own text, as
    Jinja's trim_blocks/lstrip_blocks would lay it out (a partial that ends in a tag keeps the
    newline after the include for trim_blocks to take). An include that cannot be inlined is left
    for Jinja to do at render time."""
    if depth > 5:
        return source

    def inline(m: re.Match[str]) -> str:
        try:
            text = (partials / m.group(1)).read_text(encoding="utf-8")
        except OSError:
            return m.group(0)
        if _WHITESPACE_CONTROL.search(text):
            return m.group(0)
        text = _inline_includes(text, partials, depth + 1)
        text = text[:-1] if text.endswith("\n") else text
        return text + (m.group(2) if text.endswith(("%}", "#}")) else "")

    return _INCLUDE.sub(inline, source)


def _flattened(env: jinja2.Environment, source: str, template: jinja2.Template, partials: Path, path: Path,
               rule_id: str) -> jinja2.Template:
    """The detail template with its partials inlined, when that says exactly what the original says
    for every finding kind, with every variable and with none (else the original).

    A detail includes four partials; each include costs Jinja a new render context, about a quarter
    of rendering a card's detail."""
    flat_source = _inline_includes(source, partials)
    if flat_source == source:
        return template
    try:
        flat = _compile(env, flat_source, path, "detail")
    except CardTemplateError:
        return template
    verdict = _SAME.get((source, flat_source))
    if verdict is not None:  # proved already in this process (the texts include the partials')
        return flat if verdict else template
    _SAME[(source, flat_source)] = False
    full = sample_context()
    sparse = sample_context(code=None, code_summary="", code_url=None, replaces=[], modifiers=[], units=None,
                            missing=[], evidence=[], evidence_hidden=0, evidence_total=0, params=LenientParams())
    for base in (full, sparse):
        for kind in KINDS:
            ctx = {**base, "kind": kind, "rule": {**full["rule"], "id": rule_id}}
            try:
                if _tidy(flat.render(ctx)) != _tidy(template.render(ctx)):
                    return template
            except Exception:  # the original's own error is reported by check()
                return template
    _SAME[(source, flat_source)] = True
    return flat


_SAME: dict[tuple[str, str], bool] = {}  # (source, inlined source) -> they say the same

def _describe(exc: Exception) -> str:
    if not isinstance(exc, jinja2.TemplateError):  # e.g. comparing an empty value with a number
        return f"{type(exc).__name__}: {exc}"
    where = f"line {exc.lineno}: " if isinstance(exc, jinja2.TemplateSyntaxError) and exc.lineno else ""
    name = getattr(exc, "name", None)
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"included template not found: {name}"
    return f"{where}{exc.message or type(exc).__name__}"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yamlfiles.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CardTemplateError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise CardTemplateError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise CardTemplateError(f"{path}: must hold a mapping")
    return raw


def _flatten(node: Mapping[str, Any], prefix: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in node.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            out += _flatten(value, name)
        else:
            out.append((name, value))
    return out


# Compiled template code by (environment flavour, source), shared by every load in the process:
# parsing and compiling ~100 templates was most of an app's start (and tests build many apps).
# Each load still binds the code to its own environment, so partials are read from its cards_dir.
_CODE: dict[tuple[Any, str], Any] = {}
_NAMES: dict[tuple[Any, str], tuple[str, ...] | None] = {}


def _compile(env: jinja2.Environment, source: Any, path: Path, where: str) -> jinja2.Template:
    if not isinstance(source, str) or not source.strip():
        raise CardTemplateError(f"{path}: {where}: expected a template text")
    key = (env.finalize, source)  # the two flavours (_env) differ only in their finalize
    code = _CODE.get(key)
    if code is None:
        try:
            code = _CODE[key] = env.compile(source)
        except jinja2.TemplateSyntaxError as exc:
            raise CardTemplateError(f"{path}: {where}: line {exc.lineno}: {exc.message}") from None
    return env.template_class.from_code(env, code, env.make_globals(None))


def _source(spec: Mapping[str, Any], part: str, kind: str) -> str:
    value = spec[part]
    return value if isinstance(value, str) else value[kind]


def _part(env: jinja2.Environment, spec: Mapping[str, Any], part: str, path: Path) -> dict[str, jinja2.Template]:
    value = spec.get(part)
    if value is None:
        raise CardTemplateError(f"{path}: missing '{part}'")
    if isinstance(value, str):
        return {"default": _compile(env, value, path, part)}
    if not isinstance(value, Mapping):
        raise CardTemplateError(f"{path}: '{part}' must be a template text or a mapping of finding kind to text")
    unknown = sorted(set(value) - set(KINDS) - {"default"})
    if unknown:
        raise CardTemplateError(
            f"{path}: {part}: unknown finding kind(s) {', '.join(unknown)} (known: {', '.join(KINDS)}, default)")
    if "default" not in value:
        raise CardTemplateError(f"{path}: {part}: needs a 'default' entry for kinds it does not list")
    return {kind: _compile(env, text, path, f"{part}.{kind}") for kind, text in value.items()}


def cards_dir(settings: Settings) -> Path:
    """The configured cards_dir, else the installed package's copy (service/cards in the wheel),
    else the repository's cards/ beside the service package (a source checkout), else ./cards."""
    if settings.cards_dir:
        return Path(settings.cards_dir)
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "cards", package.parent / "cards"):
        if candidate.is_dir():
            return candidate
    return Path.cwd() / "cards"

