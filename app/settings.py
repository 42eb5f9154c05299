"""Settings and per-application resources, for code that must not know the web framework.

The domain reads its settings through `settings()` (a read-only mapping of the configuration,
app/config.py) and keeps per-application singletons (the Redis client, loaded keys, the media
store) in `resources()`. Where they come from is decided by the composition root: the app
factory (app/__init__.py) installs a source that answers with the running Flask application,
whose `config`, `extensions` and `instance_path` these are. Nothing here imports Flask.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, MutableMapping, Protocol


class Environment(Protocol):
    """What the domain needs of the running application."""

    config: Mapping[str, Any]
    extensions: MutableMapping[str, Any]
    instance_path: str


_source: Callable[[], Environment | None] | None = None


def install(source: Callable[[], Environment | None]) -> None:
    """Composition root: `source()` returns the running application, or None outside one."""
    global _source
    _source = source


def has_environment() -> bool:
    return _source is not None and _source() is not None


def environment() -> Environment:
    env = _source() if _source is not None else None
    if env is None:
        raise RuntimeError("no application is running: settings are read inside one "
                           "(e.g. `with app.app_context():`)")
    return env


def settings() -> Mapping[str, Any]:
    """The configuration (app/config.py) of the running application."""
    return environment().config


def resources() -> MutableMapping[str, Any]:
    """Per-application singletons, made on first use (a Redis client, loaded keys, ...)."""
    return environment().extensions


def instance_path() -> str:
    """The application's instance folder (development keys, the SQLite file, ...)."""
    return environment().instance_path
