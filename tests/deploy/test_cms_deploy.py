"""Every production configuration in deploy/ names the quarterly CMS files on a mounted volume and
never falls back to the synthetic tables."""
from __future__ import annotations

from pathlib import Path

import yaml

from service.config import load_settings

from .test_manifests import COMPOSE, container, mounts, of_kind

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CMS_SETTINGS = ("ncci_ptp_path", "ncci_mue_path", "mpfs_rvu_path")


def cms_paths(settings) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.strip() for name in CMS_SETTINGS for p in getattr(settings, name).split(",") if p.strip()]


def test_production_yaml_names_cms_files_and_refuses_synthetic_tables(tmp_path):
    settings = load_settings(DEPLOY / "pumpcds.production.yaml", environ={})
    assert all(getattr(settings, name) for name in CMS_SETTINGS) and settings.allow_synthetic_cms is False
    compose_mounts = {v.rsplit(":", 2)[-2] for v in COMPOSE["services"]["pumpcds"]["volumes"]}  # src:dst:ro
    for path in cms_paths(settings):
        assert path.rsplit("/", 1)[0] in compose_mounts, f"{path} is not on a volume docker-compose mounts"


def test_configmap_names_cms_files_on_the_mounted_cms_volume(tmp_path):
    (cm,) = of_kind("ConfigMap")
    path = tmp_path / "pumpcds.yaml"
    path.write_text(cm["data"]["pumpcds.yaml"])
    settings = load_settings(path, environ={})
    assert settings.allow_synthetic_cms is False
    volumes = mounts()
    for file in cms_paths(settings):
        directory = file.rsplit("/", 1)[0]
        assert directory in volumes, f"{file} is not on a mounted volume"
        assert "persistentVolumeClaim" in volumes[directory]
    claims = {d["metadata"]["name"] for d in of_kind("PersistentVolumeClaim")}
    assert volumes["/etc/pumpcds/cms"]["persistentVolumeClaim"]["claimName"] in claims
    assert any(m["mountPath"] == "/etc/pumpcds/cms" and m.get("readOnly") for m in container()["volumeMounts"])
    assert yaml.safe_load(cm["data"]["pumpcds.yaml"])["allow_synthetic_cms"] is False
