"""``model-garden config view|set``: the CLI's defaults, in one YAML file.

The file is ``$MODEL_GARDEN_CONFIG``, else ``$XDG_CONFIG_HOME/model-garden/config.yaml``
(default ``~/.config/model-garden/config.yaml``). Flags always win over it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import yaml

from .errors import InvalidInput
from .output import OUTPUT_OPTION, emit

CONFIG_ENV = "MODEL_GARDEN_CONFIG"
KEYS: dict[str, str] = {
    "mode": "auto (a configured cluster, else local), local or cluster",
    "context": "kubeconfig context to use (default: the current one)",
    "namespace": "namespace in a cluster (default: the context's, else default)",
    "country": "ISO alpha-3 country of the grid for jobs that name none, e.g. FRA",
    "region": "grid region for jobs that name none, e.g. california",
    "storage": "spec.output.storage for jobs that name none, e.g. pvc://artifacts",
    "image": "trainer image (spec.image) for jobs that name none",
    "home": "local mode's folder (default: $MODEL_GARDEN_HOME or ~/.local/share/model-garden)",
}
MODES = ("auto", "local", "cluster")


def config_path() -> Path:
    configured = os.environ.get(CONFIG_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "model-garden" / "config.yaml"


def load() -> dict[str, Any]:
    path = config_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a mapping of settings")
    return {k: v for k, v in data.items() if k in KEYS}


def _check(key: str, value: str) -> None:
    if key not in KEYS:
        raise InvalidInput(f"unknown setting {key!r}; known: {', '.join(KEYS)}")
    if key == "mode" and value not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {value!r}")


@click.group()
def config() -> None:
    """View and set the CLI's defaults.

    \b
    Example:
      mg config set country FRA
      mg config view -o yaml
    """


@config.command("view")
@OUTPUT_OPTION
def view(output: str) -> None:
    """Show every setting, its value and what it means.

    \b
    Example:
      mg config view
    """
    values = load()
    rows = [{"key": k, "value": values.get(k), "meaning": v} for k, v in KEYS.items()]
    if output == "table":
        emit(
            rows,
            output,
            [
                ("KEY", lambda r: r["key"]),
                ("VALUE", lambda r: r["value"]),
                ("MEANING", lambda r: r["meaning"]),
            ],
        )
    else:
        emit({"path": str(config_path()), **values}, output, [])


@config.command("set")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--unset", is_flag=True, help="Remove the setting.")
def set_(key: str, value: str | None, unset: bool) -> None:
    """Set KEY to VALUE (or remove it with --unset).

    \b
    Example:
      mg config set namespace research
      mg config set region --unset
    """
    if not unset and value is None:
        raise InvalidInput(f"a value is needed: mg config set {key} VALUE (or --unset)")
    _check(key, "auto" if unset and key == "mode" else str(value))
    values = load()
    if unset:
        values.pop(key, None)
    else:
        values[key] = value
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(values, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    click.echo(f"{key} {'unset' if unset else f'= {value}'} ({path})")
