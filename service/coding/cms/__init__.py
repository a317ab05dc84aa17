"""CMS edit and fee-schedule tables: NCCI PTP, practitioner MUE and MPFS (PPRRVU) indicators.

The service runs with the real quarterly CMS files when the settings `ncci_ptp_path` (several
comma-separated paths allowed: CMS splits the practitioner file in parts), `ncci_mue_path` and
`mpfs_rvu_path` point at them, and with the bundled synthetic files otherwise. The synthetic files
have the real layouts but invented values (see service/coding/data/cms/README.md): a WARNING is
logged once per process when any of them is in use, cards resting on them say "test data", and
production mode (`development_mode: false`) refuses to start on them unless
`allow_synthetic_cms: true` says this is a test installation.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.config import ConfigError

from .files import CmsFileError, SourceFile
from .mpfs import FeeIndicators, MpfsTable
from .mue import MueLimit, MueTable
from .ptp import PtpEdit, PtpTable

__all__ = [
    "CmsFileError", "CmsPaths", "CmsTables", "FeeIndicators", "MpfsTable", "MueLimit", "MueTable",
    "PtpEdit", "PtpTable", "SourceFile", "default_paths", "load_tables",
]

log = logging.getLogger("pumpcds.cms")

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "cms"

_warned_synthetic = False


@dataclass(frozen=True)
class CmsPaths:
    ptp: tuple[Path, ...]
    mue: Path
    mpfs: Path


@dataclass(frozen=True)
class CmsTables:
    ptp: PtpTable
    mue: MueTable
    mpfs: MpfsTable

    @classmethod
    def empty(cls) -> CmsTables:
        return cls(PtpTable.empty(), MueTable.empty(), MpfsTable.empty())

    @property
    def synthetic(self) -> bool:
        """True when any table comes from a file marked synthetic (not a CMS release)."""
        return any(t.source is not None and t.source.synthetic for t in (self.ptp, self.mue, self.mpfs))


def default_paths() -> CmsPaths:
    """The bundled synthetic files (real layouts, invented values)."""
    return CmsPaths(
        ptp=(DATA_DIR / "ptp-practitioner-synthetic.txt",),
        mue=DATA_DIR / "mue-practitioner-synthetic.csv",
        mpfs=DATA_DIR / "pprrvu-synthetic.csv",
    )


def load_tables(settings: Any) -> CmsTables:
    """Load the configured CMS files, falling back per table to the synthetic ones.

    A configured file that is missing or has no recognisable header raises ConfigError naming the
    setting: running silently without the edits the operator asked for would be worse than not starting.
    """
    defaults = default_paths()
    ptp_setting = str(getattr(settings, "ncci_ptp_path", "") or "").strip()
    mue_setting = str(getattr(settings, "ncci_mue_path", "") or "").strip()
    mpfs_setting = str(getattr(settings, "mpfs_rvu_path", "") or "").strip()

    ptp_paths = tuple(Path(p.strip()) for p in ptp_setting.split(",") if p.strip()) or defaults.ptp
    ptp = _load("ncci_ptp_path", bool(ptp_setting), lambda: PtpTable.load(ptp_paths))
    mue = _load("ncci_mue_path", bool(mue_setting), lambda: MueTable.load(Path(mue_setting) if mue_setting else defaults.mue))
    mpfs = _load("mpfs_rvu_path", bool(mpfs_setting),
                 lambda: MpfsTable.load(Path(mpfs_setting) if mpfs_setting else defaults.mpfs))
    tables = CmsTables(ptp, mue, mpfs)
    _refuse_synthetic_in_production(settings, tables)
    _warn_if_synthetic(tables)
    return tables


def synthetic_tables(tables: CmsTables) -> list[str]:
    return [name for name, t in (("PTP", tables.ptp), ("MUE", tables.mue), ("MPFS", tables.mpfs))
            if t.source is not None and t.source.synthetic]


def _refuse_synthetic_in_production(settings: Any, tables: CmsTables) -> None:
    synthetic = synthetic_tables(tables)
    if (synthetic and getattr(settings, "development_mode", True) is False
            and not getattr(settings, "allow_synthetic_cms", False)):
        raise ConfigError(
            f"production mode would code on the bundled synthetic CMS test tables ({', '.join(synthetic)}); "
            "mount the quarterly CMS files and set ncci_ptp_path, ncci_mue_path and mpfs_rvu_path "
            "(docs/deployment.md, 'CMS files'), or set allow_synthetic_cms: true for a test installation")


def _load(setting: str, configured: bool, loader: Any) -> Any:
    try:
        return loader()
    except CmsFileError as exc:
        if configured:
            raise ConfigError(f"{setting}: {exc}") from exc
        raise  # the bundled files are broken: a packaging bug, not a configuration problem


def _warn_if_synthetic(tables: CmsTables) -> None:
    global _warned_synthetic
    synthetic = synthetic_tables(tables)
    if synthetic and not _warned_synthetic:
        _warned_synthetic = True
        log.warning("synthetic CMS data in use for %s: test values, not a CMS release; set ncci_ptp_path, "
                    "ncci_mue_path and mpfs_rvu_path to the quarterly CMS files", ", ".join(synthetic))
