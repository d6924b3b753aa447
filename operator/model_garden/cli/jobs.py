"""``model-garden jobs list|get|logs|watch|cancel|delete``: FineTuneJobs, in a cluster or local mode."""

from __future__ import annotations

from typing import Any

import click

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, CliError
from .output import OUTPUT_OPTION, age, condition, details, emit, figure
from .target import Target, must_get, target_options
from .train import energy, finished, follow, progress_fields, state, summary

KIND = "FineTuneJob"


def _columns() -> list[tuple[str, Any]]:
    def progress(job: dict[str, Any]) -> dict[str, Any]:
        return (job.get("status") or {}).get("progress") or {}

    return [
        ("NAME", lambda j: j["metadata"]["name"]),
        ("STATE", state),
        ("STEP", lambda j: f"{progress(j).get('step', 0)}/{progress(j).get('totalSteps') or '?'}"),
        ("LOSS", lambda j: figure(progress(j).get("loss"), 4)),
        ("EVAL LOSS", lambda j: figure(progress(j).get("evalLoss"), 4)),
        ("VERSION", lambda j: (j.get("status") or {}).get("modelVersion")),
        ("CO2E", lambda j: ((j.get("status") or {}).get("carbon") or {}).get("emissions")),
        ("AGE", lambda j: age(j["metadata"].get("creationTimestamp"))),
    ]


@click.group()
def jobs() -> None:
    """FineTuneJobs: list, inspect, read logs, watch, cancel, delete.

    \b
    Example:
      mg jobs list
      mg jobs get pets-finetune -o yaml
    """


@jobs.command("list")
@OUTPUT_OPTION
@target_options
def list_(target: Target, output: str) -> None:
    """List FineTuneJobs.

    \b
    Example:
      mg jobs list -o json
    """
    backend = target.backend()
    backend.refresh()
    emit(backend.items(KIND), output, _columns())


@jobs.command()
@click.argument("name")
@OUTPUT_OPTION
@target_options
def get(target: Target, name: str, output: str) -> None:
    """Show one FineTuneJob: state, progress, carbon, what it made, recent events.

    \b
    Example:
      mg jobs get pets-finetune
    """
    backend = target.backend()
    backend.refresh()
    job = must_get(backend, KIND, name)
    if output != "table":
        emit(job, output, [])
        return
    spec, status = job.get("spec") or {}, job.get("status") or {}
    fields = progress_fields(job)
    carbon = status.get("carbon") or {}
    latest = condition(job, "Failed") if finished(job) == "Failed" else condition(job, "Running")
    base = spec.get("baseModel") or {}
    pairs: list[tuple[str, Any]] = [
        ("name", name),
        ("state", state(job)),
        ("message", latest.get("message") or condition(job, "Succeeded").get("message")),
        (
            "base model",
            base.get("uri")
            or (base.get("hub") or {}).get("id")
            or (base.get("modelVersion") or {}).get("name"),
        ),
        ("dataset", (spec.get("dataset") or {}).get("uri")),
        ("method", (spec.get("method") or {}).get("type", "lora")),
        ("step", f"{fields['step']}/{fields['total']}"),
        ("loss / eval loss", f"{fields['loss']} / {fields['eval']}"),
        ("tokens/s", fields["tps"]),
        ("energy", energy(carbon.get("energyKwh"))),
        (
            "CO2e",
            f"{carbon.get('emissions') or '-'} ({carbon.get('method', '-')}, {carbon.get('country') or '-'})",
        ),
        ("model version", status.get("modelVersion")),
        ("created", job["metadata"].get("creationTimestamp")),
    ]
    for event in backend.events(KIND, name)[-5:]:
        pairs.append((f"event {event.get('reason')}", event.get("message")))
    details(pairs)


@jobs.command()
@click.argument("name")
@click.option("--tail", type=click.IntRange(min=1), help="Only the last N lines.")
@target_options
def logs(target: Target, name: str, tail: int | None) -> None:
    """Print the trainer's log of a FineTuneJob (its newest pod).

    \b
    Example:
      mg jobs logs pets-finetune --tail 20
    """
    backend = target.backend()
    backend.refresh()
    job = must_get(backend, KIND, name)
    text = backend.logs(job)
    if not text:
        raise CliError(f"FineTuneJob {name} has no trainer log yet ({state(job)})")
    lines = text.splitlines()
    click.echo("\n".join(lines[-tail:] if tail else lines))


@jobs.command()
@click.argument("name")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 1).")
@target_options
def watch(target: Target, name: str, timeout: float | None) -> None:
    """Follow a FineTuneJob until it ends: step, loss, eval loss, tokens/s, ETA, energy, CO2e.

    A live progress bar on a terminal, one line per change otherwise. Exits 0 when the job
    succeeded (and its ModelVersion is verified), 1 when it failed; Ctrl-C stops watching, not
    the job.

    \b
    Example:
      mg jobs watch pets-finetune
    """
    backend = target.backend()
    backend.refresh()
    must_get(backend, KIND, name)
    try:
        final = follow(backend, name, timeout)
    except KeyboardInterrupt:
        click.echo(f"\nstopped watching; the job goes on: mg jobs get {name}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    for line in summary(backend, final):
        click.echo(line)
    if finished(final) != "Succeeded":
        raise SystemExit(EXIT_FAILED)


@jobs.command()
@click.argument("name")
@target_options
def cancel(target: Target, name: str) -> None:
    """Stop a FineTuneJob: sets spec.suspend, the trainer checkpoints and exits.

    Setting spec.suspend back to false (kubectl patch, or the manifest) resumes it from the
    checkpoint.

    \b
    Example:
      mg jobs cancel pets-finetune
    """
    backend = target.backend()
    backend.refresh()
    job = must_get(backend, KIND, name)
    if finished(job):
        raise CliError(f"FineTuneJob {name} already {finished(job).lower()}")  # type: ignore[union-attr]
    backend.patch(KIND, name, {"spec": {"suspend": True}})
    backend.refresh()
    click.echo(
        f"finetunejob/{name} cancelled (spec.suspend: true): the trainer checkpoints and stops"
    )


@jobs.command()
@click.argument("name")
@target_options
def delete(target: Target, name: str) -> None:
    """Delete a FineTuneJob and its trainer (the ModelVersion it made is kept).

    \b
    Example:
      mg jobs delete pets-finetune
    """
    backend = target.backend()
    backend.delete(KIND, name)
    click.echo(f"finetunejob/{name} deleted")
