"""``model-garden train``: create a FineTuneJob from a manifest or flags, and follow it.

In a cluster the operator runs it; in local mode the operator's planners run it here, the
trainer as a local process (:mod:`model_garden.local`). ``--wait`` follows the job with its
step, loss, eval loss, tokens/s, ETA, energy and CO2e, until it succeeded (and its
ModelVersion is verified) or failed.
"""

from __future__ import annotations

import time
from typing import Any

import click

from . import config as cli_config
from . import manifest
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, CliError, InvalidInput
from .output import condition, figure
from .target import Backend, LocalBackend, Target, must_get, target_options

POLL_SECONDS = 1.0


def submit(backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """Create the job (checked first, as the API server would) and start it in local mode."""
    if isinstance(backend, LocalBackend):
        from model_garden.runtime import RuntimeMissing, runtime_python

        try:
            runtime_python()
        except RuntimeMissing as exc:
            raise CliError(str(exc)) from exc
        manifest.local_paths(body, backend.store.local_path)
        body = manifest.validate(body)
    else:
        manifest.validate(body)
    created = backend.create(body)
    backend.refresh()
    return created


def finished(ftj: dict[str, Any]) -> str | None:
    """ "Succeeded" or "Failed" once the job is done, else None."""
    for type in ("Succeeded", "Failed"):
        if condition(ftj, type).get("status") == "True":
            return type
    return None


def version_settled(mv: dict[str, Any] | None) -> bool:
    """Ready, or refused for good: the version's verification is over."""
    if mv is None:
        return False
    ready = condition(mv, "Ready")
    return ready.get("status") == "True" or ready.get("reason") in (
        "VerificationFailed",
        "InvalidSpec",
    )


def state(ftj: dict[str, Any]) -> str:
    """One word for a job: Succeeded, Failed (reason), Running, or why it is not running."""
    done = finished(ftj)
    if done == "Succeeded":
        return "Succeeded"
    if done == "Failed":
        return f"Failed ({condition(ftj, 'Failed').get('reason', '')})"
    running = condition(ftj, "Running")
    if running.get("status") == "True":
        return "Running"
    return str(running.get("reason") or "Pending")


def energy(kwh: Any) -> str:
    """kWh for people: Wh below 1 kWh, mWh below 1 Wh."""
    if kwh is None:
        return "-"
    value = float(kwh)
    for unit, scale in (("kWh", 1.0), ("Wh", 1e-3), ("mWh", 1e-6)):
        if value >= scale:
            return f"{figure(value / scale)} {unit}"
    return f"{figure(value / 1e-6)} mWh"


def progress_fields(ftj: dict[str, Any]) -> dict[str, str]:
    status = ftj.get("status") or {}
    progress = status.get("progress") or {}
    carbon = status.get("carbon") or {}
    eta = progress.get("etaSeconds")
    tps = progress.get("tokensPerSecond")
    return {
        "state": state(ftj),
        "step": str(progress.get("step") or 0),
        "total": str(progress.get("totalSteps") or "?"),
        "loss": figure(progress.get("loss"), 4),
        "eval": figure(progress.get("evalLoss"), 4),
        "tps": f"{tps:.0f}" if isinstance(tps, (int, float)) else "-",
        "eta": f"{int(eta)}s" if isinstance(eta, (int, float)) else "-",
        "energy": energy(carbon.get("energyKwh")),
        "co2": str(carbon.get("emissions") or "-"),
    }


def _line(fields: dict[str, str]) -> str:
    return (
        f"  step {fields['step']}/{fields['total']}  loss {fields['loss']}  eval loss"
        f" {fields['eval']}  {fields['tps']} tok/s  ETA {fields['eta']}  {fields['energy']}"
        f"  {fields['co2']} CO2e  [{fields['state']}]"
    )


class _Display:
    """A live rich progress bar on a terminal; a line per change otherwise (logs, pipes)."""

    def __init__(self, name: str) -> None:
        from .output import console

        self.console = console()
        self.live = self.console.is_terminal
        self.last = ""
        self.progress: Any = None
        self.task: Any = None
        self.name = name

    def __enter__(self) -> _Display:
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[step]}/{task.fields[total]}"),
                TextColumn("loss {task.fields[loss]}  eval {task.fields[eval]}"),
                TextColumn("{task.fields[tps]} tok/s  ETA {task.fields[eta]}"),
                TextColumn("{task.fields[energy]}  {task.fields[co2]} CO2e"),
                TextColumn("[dim]{task.fields[state]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.progress.start()
            blank = dict.fromkeys(
                ("step", "total", "loss", "eval", "tps", "eta", "energy", "co2", "state"), "-"
            )
            self.task = self.progress.add_task(self.name, total=None, **blank)
        return self

    def update(self, ftj: dict[str, Any]) -> None:
        fields = progress_fields(ftj)
        if self.live:
            total = int(fields["total"]) if fields["total"].isdigit() else None
            self.progress.update(self.task, completed=int(fields["step"]), total=total, **fields)
            return
        line = _line(fields)
        if line != self.last:
            click.echo(line)
            self.last = line

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def follow(backend: Backend, name: str, timeout: float | None = None) -> dict[str, Any]:
    """Follow a job until it is done and its ModelVersion verified; the final job."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _Display(name) as display:
        while True:
            backend.refresh()
            ftj = must_get(backend, "FineTuneJob", name)
            display.update(ftj)
            done = finished(ftj)
            version = (ftj.get("status") or {}).get("modelVersion")
            if done == "Failed" or (
                done == "Succeeded"
                and (not version or version_settled(backend.get("ModelVersion", version)))
            ):
                return ftj
            if deadline is not None and time.monotonic() > deadline:
                raise CliError(f"FineTuneJob {name} did not finish in {timeout:.0f}s")
            time.sleep(POLL_SECONDS)


def summary(backend: Backend, ftj: dict[str, Any]) -> list[str]:
    """What a finished job made (or why it failed), in sentences."""
    name = ftj["metadata"]["name"]
    status = ftj.get("status") or {}
    carbon = status.get("carbon") or {}
    spent = (
        f"{energy(carbon.get('energyKwh'))}, {carbon.get('emissions') or '-'} CO2e"
        f" ({carbon.get('method', 'estimated')}, {carbon.get('country') or '?'})"
    )
    if finished(ftj) != "Succeeded":
        failed = condition(ftj, "Failed")
        return [
            f"FineTuneJob {name} failed: {failed.get('reason')}: {failed.get('message')}",
            f"  spent {spent}",
        ]
    mv = backend.get("ModelVersion", status.get("modelVersion") or "") or {}
    spec = mv.get("spec") or {}
    metrics = spec.get("metrics") or {}
    loss = ""
    if metrics.get("evalLoss"):
        loss = (
            f", eval loss {figure(metrics.get('initialEvalLoss'))} → {figure(metrics['evalLoss'])}"
        )
    ready = condition(mv, "Ready")
    return [
        f"FineTuneJob {name} succeeded: ModelVersion {mv.get('metadata', {}).get('name')}{loss}",
        f"  spent {spent}",
        f"  artifact {(spec.get('artifact') or {}).get('uri')} ({ready.get('reason', 'not verified')})",
    ]


@click.command()
@click.option("-f", "--filename", help="A FineTuneJob manifest (YAML; - reads stdin).")
@click.option("--name", help="Job name [default: <model>-<random>].")
@click.option("--base-model", help="Hub id (org/name), ModelVersion name, URI, or a local path.")
@click.option("--dataset", help="Dataset: a local file (local mode) or pvc://, s3://, file:// URI.")
@click.option(
    "--format", "fmt", type=click.Choice(["auto", "alpaca", "chat", "completion", "text"])
)
@click.option("--method", type=click.Choice(["lora", "qlora", "full"]))
@click.option("--epochs", type=click.IntRange(min=1))
@click.option("--max-steps", type=click.IntRange(min=1))
@click.option("--learning-rate", help="Peak learning rate, e.g. 2e-4.")
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--max-seq-length", type=click.IntRange(min=16))
@click.option("--eval-split", help="Share held out for evaluation, e.g. 0.1.")
@click.option("--model", help="Model name of the ModelVersion [default: from the dataset].")
@click.option("--storage", help="Where artifacts go: pvc://<claim> or file://<dir>.")
@click.option("--merge/--no-merge", default=None, help="Also save the merged model.")
@click.option("--country", help="ISO alpha-3 country of the grid, e.g. FRA.")
@click.option("--region", help="Grid region, e.g. california.")
@click.option("--experiment", help="Experiment label (dashboards group by it).")
@click.option("--wait", is_flag=True, help="Follow the job until it is done; exit 1 if it fails.")
@click.option("--timeout", type=float, help="With --wait: give up after this many seconds.")
@target_options
def train(
    target: Target,
    filename: str | None,
    name: str | None,
    base_model: str | None,
    dataset: str | None,
    wait: bool,
    timeout: float | None,
    **flags: Any,
) -> None:
    """Fine-tune a model: create a FineTuneJob from a manifest or from flags.

    \b
    Examples:
      mg train -f crds/samples/finetunejob-minimal.yaml --wait
      mg train --local --base-model ./tiny-llama --dataset pets.jsonl \\
          --method full --max-steps 60 --wait
    """
    backend = target.backend()
    given = {k: v for k, v in flags.items() if v is not None}
    if filename:
        if base_model or dataset or given:
            raise InvalidInput("pass either -f or flags (--base-model, --dataset, …), not both")
        body = manifest.read_manifest(filename)
        if name:
            body["metadata"] = {**(body.get("metadata") or {}), "name": name}
    else:
        if not base_model or not dataset:
            raise InvalidInput("--base-model and --dataset are needed (or -f MANIFEST)")
        body = manifest.from_flags(
            name=name,
            base=base_model,
            dataset=dataset,
            local=backend.local,
            defaults=cli_config.load(),
            **{k: flags.get(k) for k in flags},
        )
    created = submit(backend, body)
    job = created["metadata"]["name"]
    click.echo(f"finetunejob/{job} created ({backend.where})")
    if not wait:
        click.echo(f"follow it: mg jobs get {job}" + (" --local" if backend.local else ""))
        return
    try:
        final = follow(backend, job, timeout)
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; the job goes on: mg jobs get {job}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    for line in summary(backend, final):
        click.echo(line)
    version = (final.get("status") or {}).get("modelVersion")
    mv = backend.get("ModelVersion", version) if version else None
    if finished(final) != "Succeeded" or (mv and condition(mv, "Ready").get("status") != "True"):
        raise SystemExit(EXIT_FAILED)
