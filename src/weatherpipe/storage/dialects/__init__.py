"""The database dialects; each module is imported only when a URL names its database."""

from __future__ import annotations

from importlib import import_module

from weatherpipe.errors import ConfigError
from weatherpipe.storage.dialects.base import Dialect

# SQLAlchemy's backend name → the module that implements it.
MODULES = {
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgresql": "postgresql",
}


def load(backend: str) -> Dialect:
    """The dialect of a SQLAlchemy backend name ("sqlite", "mysql", "postgresql", ...)."""
    module = MODULES.get(backend)
    if module is None:
        known = ", ".join(sorted(MODULES))
        raise ConfigError(f"database {backend!r} is not supported (use one of: {known})")
    dialect: Dialect = import_module(f"{__name__}.{module}").DIALECT
    return dialect
