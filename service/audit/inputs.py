"""Which files an audit reads, and Bundles flattened to NDJSON so one reader handles every input.

Bulk Data NDJSON (plain or .gz) is read in place by the query engine. A JSON file holding a
Bundle (collection, transaction, searchset, batch), a single resource or a list is flattened into
NDJSON in the run's work folder (inside the output folder: it is patient data), with the
transaction-style `urn:uuid:` references rewritten to `Type/id` so visits link up as they would
on a FHIR server.
"""
from __future__ import annotations

import gzip
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")
_ID_OK = re.compile(r"[^A-Za-z0-9\-.]")


class InputError(Exception):
    """An input path that cannot be read: said precisely, never a stack trace."""


@dataclass
class InputFile:
    path: Path
    kind: str  # "ndjson" | "bundle" | "resource"
    bytes: int
    resources: int | None = None  # known for flattened JSON; NDJSON is counted by the engine


@dataclass
class Inputs:
    """The NDJSON files the engine reads, and what each given file was."""

    ndjson: list[Path] = field(default_factory=list)
    files: list[InputFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files skipped, and why (no patient data)
    remote: list[str] = field(default_factory=list)  # hdfs://, s3a://... read by Spark as NDJSON


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else path.open(encoding="utf-8")


def discover(paths: list[str | Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file() and item.name.lower().endswith(NDJSON_SUFFIXES + JSON_SUFFIXES):
                    yield item
        elif path.is_file():
            yield path
        else:
            raise InputError(f"input not found: {path}")


def _entries(doc: Any) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(resource, fullUrl) for a Bundle's entries (nested Bundles opened), a list or one resource."""
    if isinstance(doc, list):
        for item in doc:
            yield from _entries(item)
    elif isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        for entry in doc.get("entry") or ():
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                inner = entry["resource"]
                if inner.get("resourceType") == "Bundle":
                    yield from _entries(inner)
                else:
                    yield inner, entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    elif isinstance(doc, dict) and isinstance(doc.get("resourceType"), str):
        yield doc, None


def _rewrite(node: Any, links: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v, links) for k, v in node.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in links:
            out["reference"] = links[ref]
        return out
    if isinstance(node, list):
        return [_rewrite(v, links) for v in node]
    return node


def flatten(doc: Any) -> list[dict[str, Any]]:
    """A Bundle's resources with ids from `urn:uuid:` fullUrls and references made `Type/id`."""
    items = list(_entries(doc))
    links: dict[str, str] = {}
    out = []
    for resource, full_url in items:
        rid = resource.get("id")
        if not isinstance(rid, str) or not rid:
            tail = (full_url or "").rsplit(":", 1)[-1].rsplit("/", 1)[-1]
            rid = _ID_OK.sub("-", tail)[:64] if tail else uuid.uuid4().hex
            resource = {**resource, "id": rid}
        if full_url and full_url.startswith("urn:"):
            links[full_url] = f"{resource['resourceType']}/{rid}"
        out.append(resource)
    return [_rewrite(r, links) for r in out] if links else out


def _is_ndjson(path: Path) -> bool:
    """NDJSON by name, or a .json file whose first line is a whole JSON object followed by more."""
    if path.name.lower().endswith(NDJSON_SUFFIXES):
        return True
    with _open_text(path) as fh:
        first = fh.readline()
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        return bool(fh.readline().strip())


def gather(paths: list[str | Path], work: Path, on_file: Callable[[int, int], None] | None = None) -> Inputs:
    """Sort the inputs into NDJSON to read in place and JSON to flatten into `work/bundles.ndjson`."""
    found = Inputs()
    staged = work / "bundles.ndjson"
    out = None
    local = []
    for raw in paths:
        if "://" in str(raw) and not str(raw).startswith("file://"):
            found.remote.append(str(raw))
        else:
            local.append(raw)
    listed = list(discover(local))
    try:
        for done, path in enumerate(listed, 1):
            if on_file is not None:
                on_file(done, len(listed))
            size = path.stat().st_size
            try:
                if _is_ndjson(path):
                    found.ndjson.append(path.resolve())
                    found.files.append(InputFile(path, "ndjson", size))
                    continue
                with _open_text(path) as fh:
                    doc = json.load(fh)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, EOFError) as exc:
                found.problems.append(f"{path}: not readable as JSON or NDJSON ({type(exc).__name__})")
                continue
            resources = flatten(doc)
            if not resources:
                found.problems.append(f"{path}: no FHIR resources in it")
                continue
            if out is None:
                work.mkdir(parents=True, exist_ok=True)
                out = staged.open("wb")
            for r in resources:
                out.write(orjson.dumps(r) + b"\n")
            kind = "bundle" if isinstance(doc, dict) and doc.get("resourceType") == "Bundle" else "resource"
            found.files.append(InputFile(path, kind, size, len(resources)))
    finally:
        if out is not None:
            out.close()
            found.ndjson.append(staged.resolve())
    return found
