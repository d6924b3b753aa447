"""``model-garden versions list|get|promote|delete``: ModelVersions, in a cluster or local mode."""

from __future__ import annotations

from typing import Any

import click

from .errors import CliError
from .output import OUTPUT_OPTION, age, condition, details, emit, figure
from .target import Target, must_get, target_options

KIND = "ModelVersion"
STAGES = ("none", "staging", "production")


def _ready(mv: dict[str, Any]) -> str:
    ready = condition(mv, "Ready")
    if not ready:
        return "-"
    return f"{ready.get('status')} ({ready.get('reason')})"


def _evaluation(ev: dict[str, Any] | None) -> str | None:
    """``mg eval``'s figures: loss 1.19, perplexity 3.29 on held.jsonl (2026-11-27)."""
    if not ev:
        return None
    return (
        f"loss {figure(ev.get('loss'), 4)}, perplexity {figure(ev.get('perplexity'), 4)} on"
        f" {ev.get('dataset')} ({str(ev.get('evaluatedAt', ''))[:10]}; {ev.get('report')})"
    )


def _columns() -> list[tuple[str, Any]]:
    def spec(mv: dict[str, Any]) -> dict[str, Any]:
        return mv.get("spec") or {}

    return [
        ("NAME", lambda m: m["metadata"]["name"]),
        ("MODEL", lambda m: spec(m).get("model")),
        ("VERSION", lambda m: spec(m).get("version")),
        ("FORMAT", lambda m: (spec(m).get("artifact") or {}).get("format")),
        ("STAGE", lambda m: spec(m).get("stage", "none")),
        ("READY", _ready),
        ("EVAL LOSS", lambda m: figure((spec(m).get("metrics") or {}).get("evalLoss"), 4)),
        ("CO2E", lambda m: (m.get("status") or {}).get("lifetimeEmissions")),
        ("AGE", lambda m: age(m["metadata"].get("creationTimestamp"))),
    ]


@click.group()
def versions() -> None:
    """ModelVersions: list, inspect, promote, delete.

    \b
    Example:
      mg versions list --model pets
      mg versions promote pets-v1 --stage production
    """


@versions.command("list")
@click.option("--model", help="Only the versions of this model.")
@OUTPUT_OPTION
@target_options
def list_(target: Target, model: str | None, output: str) -> None:
    """List ModelVersions (newest version of each model last).

    \b
    Example:
      mg versions list -o yaml
    """
    backend = target.backend()
    backend.refresh()
    items = [
        m for m in backend.items(KIND) if not model or (m.get("spec") or {}).get("model") == model
    ]
    items.sort(
        key=lambda m: (
            str((m.get("spec") or {}).get("model")),
            int((m.get("spec") or {}).get("version") or 0),
        )
    )
    emit(items, output, _columns())


@versions.command()
@click.argument("name")
@OUTPUT_OPTION
@target_options
def get(target: Target, name: str, output: str) -> None:
    """Show one ModelVersion: artifact, lineage, metrics, stage, emissions.

    \b
    Example:
      mg versions get pets-v1 -o json
    """
    backend = target.backend()
    backend.refresh()
    mv = must_get(backend, KIND, name)
    if output != "table":
        emit(mv, output, [])
        return
    spec, status = mv.get("spec") or {}, mv.get("status") or {}
    artifact = spec.get("artifact") or {}
    metrics = spec.get("metrics") or {}
    carbon = spec.get("trainingCarbon") or {}
    details(
        [
            ("name", name),
            ("model / version", f"{spec.get('model')} v{spec.get('version')}"),
            ("stage", spec.get("stage", "none")),
            ("ready", _ready(mv)),
            ("message", condition(mv, "Ready").get("message")),
            ("artifact", f"{artifact.get('uri')} ({artifact.get('format')})"),
            (
                "size / digest",
                f"{status.get('sizeBytes', '-')} bytes, {status.get('digest') or '-'}",
            ),
            ("from job", (spec.get("source") or {}).get("fineTuneJob")),
            ("metrics", ", ".join(f"{k} {figure(v, 4)}" for k, v in metrics.items())),
            ("evaluation", _evaluation(status.get("evaluation"))),
            (
                "training CO2e",
                f"{figure(carbon.get('emissionsKg'))} kg ({carbon.get('method', '-')})",
            ),
            ("lifetime CO2e", status.get("lifetimeEmissions")),
            ("served by", ", ".join(status.get("servingDeployments") or []) or None),
            ("created", mv["metadata"].get("creationTimestamp")),
        ]
    )


@versions.command()
@click.argument("name")
@click.option(
    "--stage", type=click.Choice(STAGES), default="production", show_default=True, help="New stage."
)
@target_options
def promote(target: Target, name: str, stage: str) -> None:
    """Set a ModelVersion's stage (deployments that follow the stage pick it up).

    \b
    Example:
      mg versions promote pets-v2 --stage staging
    """
    backend = target.backend()
    backend.refresh()
    mv = must_get(backend, KIND, name)
    before = (mv.get("spec") or {}).get("stage", "none")
    backend.patch(KIND, name, {"spec": {"stage": stage}})
    click.echo(f"modelversion/{name} stage {before} → {stage}")


@versions.command()
@click.argument("name")
@target_options
def delete(target: Target, name: str) -> None:
    """Delete a ModelVersion (refused while a deployment serves it).

    \b
    Example:
      mg versions delete pets-v1
    """
    backend = target.backend()
    backend.refresh()
    backend.delete(KIND, name)
    after = backend.get(KIND, name)
    if after is not None and backend.local:
        raise CliError(f"deletion of {name} is pending: {condition(after, 'Ready').get('message')}")
    click.echo(
        f"modelversion/{name} deleted"
        if after is None
        else f"modelversion/{name} deletion requested"
    )
