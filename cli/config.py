"""The optional TOML configuration file in the data directory.

\b
    db = "postgresql+psycopg://custody@db/custody"
    store = "s3://evidence?endpoint_url=https://s3.example.org"
    actor = "tech-0412"
    [retention.categories.unflagged]
    days = 90
    [commands.ingest]
    note = "Dock 3"

A file that cannot be read or parsed, or whose known settings have the wrong type, is a
``ConfigError`` (exit 5) naming the file and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from custody.errors import ConfigError

_TEXT = ("db", "store", "actor", "role", "key")
_TABLES = ("commands", "retention")


def load_config(path: Path) -> dict[str, Any]:
    if not path.exists() and not path.is_symlink():
        return {}
    import tomllib

    try:
        with path.open("rb") as handle:
            data = handle.read((1 << 20) + 1)
        if len(data) > 1 << 20:
            raise ConfigError(f"the configuration file {path} is larger than 1 MiB; is it the right file?")
        config = tomllib.loads(data.decode("utf-8"))
    except IsADirectoryError as exc:
        raise ConfigError(f"the configuration file {path} is a directory; it must be a TOML file (or absent)") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the configuration file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the configuration file {path} is not valid TOML: {exc}") from exc
    _check_types(path, config)
    return config


def _check_types(path: Path, config: dict[str, Any]) -> None:
    for name in _TEXT:
        if name in config and not isinstance(config[name], str):
            raise ConfigError(
                f"the configuration file {path}: '{name}' must be a quoted string, not "
                f"{_kind(config[name])} ({name} = {config[name]!r})"
            )
    for name in _TABLES:
        if name in config and not isinstance(config[name], dict):
            raise ConfigError(f"the configuration file {path}: '{name}' must be a table ([{name}]), not {_kind(config[name])}")
    for command, defaults in config.get("commands", {}).items():
        if not isinstance(defaults, dict):
            raise ConfigError(
                f"the configuration file {path}: 'commands.{command}' must be a table ([commands.{command}]), "
                f"not {_kind(defaults)}"
            )
    if "db_timeout" in config:
        value = config["db_timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 86400:
            raise ConfigError(
                f"the configuration file {path}: 'db_timeout' must be a number of seconds from 0 to 86400, "
                f"not {value!r}"
            )


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "a table"}.get(
        type(value), type(value).__name__
    )
