"""Shared fixtures: a repository on SQLite, MariaDB and PostgreSQL, and a clean in-process bus."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from weatherpipe.bus import memory
from weatherpipe.storage.engine import upgrade
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import in_ci, server_missing

MARIADB_ROOT = "mysql+pymysql://root@127.0.0.1:3306"
POSTGRESQL_ROOT = "postgresql+psycopg://postgres@127.0.0.1:5432"


def require(name: str, host: str, port: int) -> None:
    """Skip loudly on a laptop, fail under CI=true, when a server does not answer."""
    reason = server_missing(name, host, port)
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing server is a failure)")
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


@pytest.fixture(autouse=True)
def _fresh_memory_bus() -> Iterator[None]:
    memory.reset()
    yield
    memory.reset()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database for one test, dropped afterwards."""
    require("MariaDB", "127.0.0.1", 3306)
    name = f"wp_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(MARIADB_ROOT)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    try:
        yield f"{MARIADB_ROOT}/{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    require("PostgreSQL", "127.0.0.1", 5432)
    name = f"wp_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{POSTGRESQL_ROOT}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"{POSTGRESQL_ROOT}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/weather.db"


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite, MariaDB and PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def repo(database_url: str) -> Iterator[Repository]:
    repository = Repository.from_url(database_url)
    upgrade(repository.engine)
    yield repository
    repository.close()


@pytest.fixture
def sqlite_repo(sqlite_url: str) -> Iterator[Repository]:
    repository = Repository.from_url(sqlite_url)
    upgrade(repository.engine)
    yield repository
    repository.close()
