"""Each jti store: first use accepted, reuse refused until expiry, store outage refused with 503."""
from __future__ import annotations

import pytest

from service.app import create_app
from service.security.replay import DatabaseReplayCache, MemoryReplayCache, replay_key

from .tokens import auth, mint


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_jti_is_refused_until_it_expires(kind, tmp_path):
    clock = FakeClock()
    store = (
        MemoryReplayCache(clock)
        if kind == "memory"
        else DatabaseReplayCache.from_url(f"sqlite:///{tmp_path / 'replay.db'}")
    )
    if kind == "sqlite":
        store._clock = clock
    assert store.first_use("iss-a", "jti-1", 300)
    assert not store.first_use("iss-a", "jti-1", 300)
    assert store.first_use("iss-b", "jti-1", 300)  # jtis are per issuer
    clock.now += 301
    assert store.first_use("iss-a", "jti-1", 300)  # expired tokens are refused by exp anyway


def test_database_store_keeps_only_a_hash(tmp_path):
    store = DatabaseReplayCache.from_url(f"sqlite:///{tmp_path / 'replay.db'}")
    store.first_use("https://ehr.example.org", "secret-looking-jti-123", 60)
    data = b"".join(p.read_bytes() for p in tmp_path.glob("replay.db*"))  # WAL: rows may be in -wal
    assert b"secret-looking-jti-123" not in data
    assert replay_key("https://ehr.example.org", "secret-looking-jti-123").encode() in data


def test_unreachable_replay_store_answers_503_not_200(secure_settings):
    settings = secure_settings.with_overrides(jwt_replay_store="redis", redis_url="redis://127.0.0.1:9/0")
    client = create_app(settings).test_client()
    resp = client.get("/cds-services", headers=auth(mint("/cds-services")))
    assert resp.status_code == 503
    assert "token" not in resp.get_data(as_text=True).lower()
