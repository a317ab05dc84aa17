"""The deploy files are consistent with the app: routes, port, user, env names, references.

No container engine runs here, so the files are checked as data: every YAML document parses,
probes and health checks point at routes the app answers, the port matches gunicorn's bind,
the process is never root, and every environment variable the files set is one something reads.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
GUNICORN_CONF = (DEPLOY / "gunicorn.conf.py").read_text()

# Read by the interpreter or the base image, not by pumpcds.
RUNTIME_ENV = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d.get("kind") == kind]


def deployment() -> dict[str, Any]:
    (dep,) = of_kind("Deployment")
    return dep


def container() -> dict[str, Any]:
    (c,) = deployment()["spec"]["template"]["spec"]["containers"]
    return c


def names_the_app_reads() -> set[str]:
    """PUMPCDS_<FIELD> for every setting, the two conventional URLs, the config file, gunicorn's."""
    settings = {"PUMPCDS_" + f.name.upper() for f in fields(Settings)} - {"PUMPCDS_DATABASE_URL", "PUMPCDS_REDIS_URL"}
    gunicorn = set(re.findall(r"os\.environ(?:\.get\(|\[)[\"']([A-Z_]+)[\"']", GUNICORN_CONF))
    return settings | {"DATABASE_URL", "REDIS_URL", "PUMPCDS_CONFIG"} | gunicorn


def gunicorn_port() -> int:
    """The port of gunicorn's default bind (PORT defaults to 8080 there)."""
    match = re.search(r"os\.environ\.get\('PORT', '(\d+)'\)", GUNICORN_CONF)
    assert match, "gunicorn.conf.py must bind to PORT with a default"
    return int(match.group(1))


def dockerfile_final_stage() -> str:
    return re.split(r"(?m)^FROM ", DOCKERFILE)[-1]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for block in re.findall(r"(?ms)^ENV (.*?)(?<!\\)$", DOCKERFILE):
        for token in shlex.split(block.replace("\\\n", " ")):
            name, _, val = token.partition("=")
            env[name] = val
    return env


def test_every_manifest_parses_and_names_its_kind():
    docs = k8s_documents()
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Secret"} <= kinds
    for d in docs:
        if d["kind"] == "Kustomization":
            assert all((K8S / name).is_file() for name in d["resources"])
            assert len(d["resources"]) == len(list(K8S.glob("*.yaml"))) - 1
            continue
        assert d.get("apiVersion") and d.get("metadata", {}).get("name"), d


def test_probes_point_at_routes_the_app_answers(client):
    c = container()
    paths = {c[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe", "startupProbe") if p in c}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    healthcheck = re.search(r"(?m)^HEALTHCHECK (?:.*\\\n)*.*?http://127\.0\.0\.1:[^/]*(/\w+)", DOCKERFILE)
    assert healthcheck and healthcheck.group(1) == "/healthz"
    paths.add(healthcheck.group(1))
    for path in paths:
        assert client.get(path).status_code == 200, path


def test_probe_ports_and_service_match_gunicorn_bind():
    port = gunicorn_port()
    c = container()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == port
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ("http", port)
    (svc,) = of_kind("Service")
    assert svc["spec"]["ports"][0]["targetPort"] in ("http", port)
    assert svc["spec"]["selector"].items() <= deployment()["spec"]["template"]["metadata"]["labels"].items()
    assert re.search(rf"(?m)^EXPOSE {port}$", DOCKERFILE)
    assert dockerfile_env().get("PORT") == str(port)
    assert f"8080:{port}" in COMPOSE["services"]["pumpcds"]["ports"]
    annotations = deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port) and annotations["prometheus.io/path"] == "/metrics"


def test_nothing_runs_as_root():
    user = re.findall(r"(?m)^USER (\S+)", dockerfile_final_stage())
    assert user and user[-1].split(":")[0] not in ("0", "root")
    pod = deployment()["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert str(pod["runAsUser"]) == user[-1].split(":")[0]
    csc = container()["securityContext"]
    assert csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True


def test_dockerfile_uses_a_slim_base_and_the_production_gunicorn_config():
    assert all("slim" in line for line in re.findall(r"(?m)^FROM (.*)$", DOCKERFILE))
    assert "deploy/gunicorn.conf.py" in dockerfile_final_stage()
    assert re.search(r'(?m)^CMD \["gunicorn", "-c", "[^"]*gunicorn\.conf\.py"\]', DOCKERFILE)


def test_resources_requests_and_limits_are_set():
    res = container()["resources"]
    for key in ("cpu", "memory"):
        assert res["requests"][key] and res["limits"][key]


def env_names() -> Iterator[tuple[str, str]]:
    for item in container()["env"]:
        yield "k8s", item["name"]
    for name in COMPOSE["services"]["pumpcds"]["environment"]:
        yield "compose", name
    for name in dockerfile_env():
        yield "Dockerfile", name


@pytest.mark.parametrize("where,name", list(env_names()))
def test_every_env_var_set_is_one_the_app_reads(where, name):
    assert name in names_the_app_reads() | RUNTIME_ENV, f"{where} sets {name}, which nothing reads"


def test_secret_and_config_references_resolve():
    secrets = {d["metadata"]["name"]: d for d in of_kind("Secret")}
    configmaps = {d["metadata"]["name"]: d for d in of_kind("ConfigMap")}
    for item in container()["env"]:
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in secrets[ref["name"]]["stringData"]
    for volume in deployment()["spec"]["template"]["spec"]["volumes"]:
        if "secret" in volume:
            assert volume["secret"]["secretName"] in secrets
        if "configMap" in volume:
            assert volume["configMap"]["name"] in configmaps
    (hpa,) = of_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment()["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2


def mounts() -> dict[str, dict[str, Any]]:
    volumes = {v["name"]: v for v in deployment()["spec"]["template"]["spec"]["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in container()["volumeMounts"]}


def test_configmap_settings_load_and_the_files_they_name_are_mounted(tmp_path):
    (cm,) = of_kind("ConfigMap")
    config_env = next(e["value"] for e in container()["env"] if e["name"] == "PUMPCDS_CONFIG")
    config_dir, config_name = config_env.rsplit("/", 1)
    assert mounts()[config_dir]["configMap"]["name"] == cm["metadata"]["name"]
    assert config_name in cm["data"]
    path = tmp_path / config_name
    path.write_text(cm["data"][config_name])
    settings = load_settings(path, environ={})
    assert settings.development_mode is False
    issuers_dir, issuers_name = settings.jwt_issuers_path.rsplit("/", 1)
    assert issuers_dir == config_dir and issuers_name in cm["data"]
    issuers = yaml.safe_load(cm["data"][issuers_name])["issuers"]
    for issuer in issuers:
        if "jwks_file" in issuer:
            key_dir, key_name = f"{issuers_dir}/{issuer['jwks_file']}".rsplit("/", 1)
            jwks_secret = mounts()[key_dir]["secret"]["secretName"]
            (secret,) = [s for s in of_kind("Secret") if s["metadata"]["name"] == jwks_secret]
            assert key_name in secret["stringData"]


def test_the_image_writes_only_to_tmp():
    """Read-only root: gunicorn's and Prometheus' scratch space must be on writable mounts."""
    assert dockerfile_env()["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    metrics_dir = next(e["value"] for e in container()["env"] if e["name"] == "PROMETHEUS_MULTIPROC_DIR")
    assert metrics_dir.startswith("/tmp/") and "emptyDir" in mounts()["/tmp"]
    assert "emptyDir" in mounts()["/dev/shm"]
    assert "/tmp" in COMPOSE["services"]["pumpcds"]["tmpfs"]


def test_compose_runs_the_service_on_postgresql():
    services = COMPOSE["services"]
    env = services["pumpcds"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
    host = re.search(r"@([^:/]+)", env["DATABASE_URL"]).group(1)
    assert host in services and services[host]["image"].startswith("postgres")
    assert services["pumpcds"]["depends_on"][host]["condition"] == "service_healthy"
    assert services["pumpcds"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / services["pumpcds"]["build"]["context"] / services["pumpcds"]["build"]["dockerfile"]).is_file()
    assert env["REDIS_URL"].startswith("redis://") and "redis" in services


def test_gunicorn_config_values(monkeypatch):
    """Load the config as gunicorn does and check the production choices."""
    from gunicorn.config import Config

    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("PUMPCDS_BIND", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("PUMPCDS_ACCESS_LOG", raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/pumpcds-test-metrics")
    code = subprocess.run(
        [sys.executable, "-c",
         "import runpy, json; ns = runpy.run_path('deploy/gunicorn.conf.py'); "
         "print(json.dumps({k: ns[k] for k in ('bind', 'workers', 'worker_class', 'threads', 'timeout', "
         "'preload_app', 'wsgi_app', 'accesslog', 'access_log_format')}))"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert code.returncode == 0, code.stderr
    import json

    conf = json.loads(code.stdout)
    assert conf["bind"] == f"0.0.0.0:{gunicorn_port()}"
    assert conf["workers"] >= 2
    assert conf["timeout"] < 30  # well below what an EHR waits before giving up on a service
    assert conf["wsgi_app"] == "service.wsgi:application()"  # create_app, with one-line config errors
    assert conf["accesslog"] is None  # the app's request log is the one line per request
    log_line = conf["access_log_format"] % {
        "t": "[now]", "m": "GET", "U": "/healthz", "s": "200", "B": "16", "D": "1200",
        "{x-request-id}o": "abc", "p": "<123>",
    }
    entry = json.loads(log_line)
    assert entry["path"] == "/healthz" and entry["status"] == 200
    assert "%(q)s" not in conf["access_log_format"] and "%(r)s" not in conf["access_log_format"]  # no query strings
    assert Config().settings["worker_class"].validator(conf["worker_class"])


def test_the_retention_job_runs_the_real_command_as_the_service_does():
    (job,) = of_kind("CronJob")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == container()["image"]
    assert pod["securityContext"]["runAsUser"] == deployment()["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    secrets = {d["metadata"]["name"]: d for d in of_kind("Secret")}
    for item in c["env"]:
        assert item["name"] in names_the_app_reads()
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["key"] in secrets[ref["name"]]["stringData"]
    config_dir = dockerfile_env()["PUMPCDS_CONFIG"].rsplit("/", 1)[0]  # load_settings reads it
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == config_dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == of_kind("ConfigMap")[0]["metadata"]["name"]
    assert c["command"][0] == "pumpcds"
    from service.cli import build_parser

    args = build_parser().parse_args(c["command"][1:])  # the arguments the CLI really takes
    assert args.command == "store-prune" and args.older_than_days >= 1 and not args.dry_run
