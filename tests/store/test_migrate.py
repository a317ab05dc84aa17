"""The migration runner: ordered steps, each applied once, also when workers start together."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from service.store import tables
from service.store.engine import make_engine
from service.store.migrate import STEPS, Step, current_version, migrate


def test_fresh_database_gets_every_table_and_the_latest_version(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'dir' / 'x.db'}")  # directory created
    assert migrate(engine) == [s.version for s in STEPS]
    names = set(inspect(engine).get_table_names())
    assert {"pumpcds_schema_version", "audit_record", "audit_card", "feedback_item", "jwt_replay"} <= names
    assert current_version(engine) == STEPS[-1].version
    assert migrate(engine) == []  # second start: nothing to do


def test_only_new_steps_run_in_order_and_are_recorded(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    migrate(engine)
    ran: list[int] = []

    def step(version: int):
        def apply(conn):
            ran.append(version)
            conn.execute(text(f"CREATE TABLE extra_{version} (id INTEGER)"))
        return Step(version, f"extra {version}", apply)

    steps = STEPS + (step(STEPS[-1].version + 2), step(STEPS[-1].version + 1))
    assert migrate(engine, steps) == [STEPS[-1].version + 1, STEPS[-1].version + 2]
    assert ran == [STEPS[-1].version + 1, STEPS[-1].version + 2]
    assert migrate(engine, steps) == [] and len(ran) == 2
    with engine.connect() as conn:
        versions = list(conn.execute(select(tables.schema_version.c.version).order_by(tables.schema_version.c.version)).scalars())
    assert versions == [s.version for s in STEPS] + [STEPS[-1].version + 1, STEPS[-1].version + 2]


def test_a_failing_step_leaves_nothing_half_done(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    migrate(engine)

    def broken(conn):
        conn.execute(text("CREATE TABLE half_done (id INTEGER)"))
        raise RuntimeError("step failed")

    with pytest.raises(RuntimeError):
        migrate(engine, STEPS + (Step(99, "broken", broken),))
    assert "half_done" not in inspect(engine).get_table_names()
    assert current_version(engine) == STEPS[-1].version


def _worker(url: str, start, out) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    start.wait()
    try:
        out.put(("ok", migrate(engine)))
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(("error", repr(exc)))


def run_workers_at_once(url: str, n: int = 4) -> list[tuple[str, object]]:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, start, out)) for _ in range(n)]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return results


def test_workers_starting_together_migrate_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    results = run_workers_at_once(url)
    assert all(kind == "ok" for kind, _ in results), results
    applied = [versions for _, versions in results]
    assert sorted(applied, key=len) == [[]] * (len(results) - 1) + [[s.version for s in STEPS]]
    assert current_version(make_engine(url)) == STEPS[-1].version


def test_a_lock_refused_at_once_is_waited_out_not_fatal(tmp_path: Path):
    """SQLite may refuse a lock without waiting its busy timeout (here: a zero timeout, while
    another process holds the write lock); the migration retries instead of killing the worker."""
    import sqlite3
    import threading

    from service.store.engine import DbTimeouts

    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE other_process (id INTEGER)")
    released = threading.Timer(0.4, lambda: holder.execute("COMMIT"))
    released.start()
    try:
        engine = make_engine(f"sqlite:///{path}", DbTimeouts(sqlite_busy_ms=0))
        assert migrate(engine) == [s.version for s in STEPS]
    finally:
        released.join()
        holder.close()
    assert current_version(engine) == STEPS[-1].version


def test_a_lock_held_past_the_patience_is_reported(tmp_path: Path):
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from service.store.engine import DbTimeouts

    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE other_process (id INTEGER)")
    try:
        engine = make_engine(f"sqlite:///{path}", DbTimeouts(sqlite_busy_ms=0))
        with pytest.raises(OperationalError, match="locked"):
            migrate(engine, patience_s=0.3)
    finally:
        holder.close()
