"""Engines from URLs, with the settings each database needs, and schema migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from weatherpipe.errors import ConfigError, StorageError, StorageUnavailable
from weatherpipe.storage.dialects import load

MIGRATIONS = Path(__file__).with_name("migrations")


def create_db_engine(url: str) -> Engine:
    """An engine for `url`, built by its dialect (SQLite in WAL mode, servers pooled)."""
    try:
        parsed = make_url(url)
        return load(parsed.get_backend_name()).create_engine(parsed)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"WEATHERPIPE_DATABASE_URL: cannot use {url!r}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"WEATHERPIPE_DATABASE_URL: {exc}") from None


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def require_current(engine: Engine) -> None:
    """Raise StorageError unless the schema is at the latest revision (for stages that do not
    migrate: several processes upgrading one database at once race on the same DDL)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import OperationalError

    wanted = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    try:
        with engine.connect() as conn:
            found = set(MigrationContext.configure(conn).get_current_heads())
    except OperationalError as exc:
        raise StorageUnavailable(f"cannot reach the database: {exc.orig or exc}") from None
    if found != wanted:
        have = ", ".join(sorted(found)) or "no schema"
        raise StorageError(
            f"the database schema is at {have}, this weatherpipe needs {', '.join(sorted(wanted))}:"
            " run `weatherpipe db upgrade` (WEATHERPIPE_MIGRATE=false: stages do not migrate)"
        )
