"""`pip install .` then `pumpcds serve` from any folder: the wheel carries cards/ and every data file.

The wheel is built offline from a copy of the sources (no build isolation, no downloads), installed
with --no-deps into a fresh venv that borrows this venv's site-packages for the dependencies, and
started from an empty temporary directory with no setting but a database URL.
"""
from __future__ import annotations

import os
import shutil
import site
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests
from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_service_package_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set(find_namespace_packages(where=str(ROOT), include=["service*"])) | {"service.cards"}
    missing = sorted(found - listed)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml or the wheel lacks them"
    assert not sorted(listed - found), "pyproject.toml lists packages that do not exist"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv with the pumpcds wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("service", "cards"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, timeout=180, cwd=tmp)
    [wheel] = (tmp / "dist").glob("pumpcds-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    [venv_site] = (venv / "lib").glob("python3*/site-packages")
    # dependencies from this venv, but not its editable pumpcds: a plain path entry, so the .pth
    # files there (the editable install's finder) are not run
    (venv_site / "borrowed-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=180)
    return venv / "bin"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PUMPCDS_") and k not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'pumpcds.db'}"
    return env


def test_the_installed_wheel_serves_discovery_and_cards_from_any_folder(installed, tmp_path):
    where = subprocess.run([str(installed / "python"), "-c", "import service; print(service.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=60)
    assert str(installed.parent) in where.stdout, "the service must come from the wheel, not the checkout"

    port = _free_port()
    proc = subprocess.Popen([str(installed / "pumpcds"), "serve", "--port", str(port)], cwd=tmp_path,
                            env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=open(tmp_path / "err.log", "wb"))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "err.log").read_text()[-2000:]
            try:
                discovery = requests.get(f"http://127.0.0.1:{port}/cds-services", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "pumpcds serve did not answer in time"
                time.sleep(0.2)
        assert discovery.status_code == 200 and discovery.json()["services"]
        # a documentation page: rendered from the cards/ templates inside the wheel
        page = requests.get(f"http://127.0.0.1:{port}/docs/rules/NCCI-MUE", timeout=5)
        assert page.status_code == 200 and "NCCI-MUE" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
