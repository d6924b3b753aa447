"""``model-garden quickstart``: the whole flow on one machine — fine-tune, version, serve, account.

A short script over the commands, in local mode: it builds the embedded default (a tiny Llama
and a learnable dataset; the Hub is not needed), then does what ``mg train --local --wait``
does — a FineTuneJob planned by the operator's planners, trained by the real trainer as a local
process, its ModelVersion verified by the operator's verification Job — then what ``mg deploy
--wait`` does — an InferenceDeployment whose server pod (the serving launcher: vLLM and the
carbon meter) runs as a local process — asks it one question and prints the energy and CO2e of
each step. The deployment is deleted at the end; Ctrl-C stops the trainer or the server it
started and leaves nothing running.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from .deploy import create_deployment, wait_ready
from .errors import EXIT_INTERRUPTED, CliError
from .output import condition, figure
from .target import LocalBackend
from .train import energy, finished, follow, submit

JOB = "pets-finetune"
MODEL = "pets"
API = "modelgarden.dev/v1alpha1"


def run_in_runtime(
    args: list[str], log: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    from model_garden.runtime import RuntimeMissing, runtime_env, runtime_python

    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    try:
        python = runtime_python()
    except RuntimeMissing as exc:
        raise CliError(str(exc)) from exc
    out = log.open("wb") if log else None
    return subprocess.Popen(
        [python, *args],
        env=runtime_env(extra=env),
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
        start_new_session=True,
    )


def ensure_demo(home: Path) -> tuple[Path, Path]:
    """The tiny base model and the demo dataset, built once."""
    from model_garden.demo.data import alpaca_rows, write_jsonl

    base = home / "base" / "tiny-llama"
    if not (base / "config.json").exists():
        click.echo("building the embedded tiny model (≈120k parameters) …")
        shutil.rmtree(base, ignore_errors=True)
        proc = run_in_runtime(["-m", "model_garden.demo.tiny_model", str(base)], home / "build.log")
        if proc.wait() != 0:
            raise CliError(f"building the tiny model failed: see {home / 'build.log'}")
    dataset = write_jsonl(home / "datasets" / "pets.jsonl", alpaca_rows(400))
    return base, dataset


def demo_job(
    name: str, base: Path, dataset: Path, steps: int, method: str, country: str
) -> dict[str, Any]:
    """The FineTuneJob of the quickstart, as a user would write it."""
    return {
        "apiVersion": API,
        "kind": "FineTuneJob",
        "metadata": {"name": name, "labels": {"modelgarden.dev/experiment": "quickstart"}},
        "spec": {
            "baseModel": {"uri": f"file://{base}"},
            "dataset": {
                "uri": f"file://{dataset}",
                "format": "alpaca",
                "maxSeqLength": 128,
                "evalSplit": "0.1",
            },
            # The embedded base is randomly initialised: a 120k-parameter model learns the
            # task within a minute only when every weight moves (LoRA plateaus near 5.2).
            "method": {"type": method, "lora": {"rank": 8, "alpha": 16}},
            "hyperparameters": {"maxSteps": steps, "learningRate": "3e-3", "batchSize": 8},
            "output": {"model": MODEL, "merge": True},
            "checkpointing": {"everySteps": max(steps // 2, 1), "keep": 1},
            "carbon": {"country": country},
        },
    }


def _job_name(backend: LocalBackend) -> str:
    """pets-finetune, then pets-finetune-2, -3 … in a home that already has one."""
    taken = {j["metadata"]["name"] for j in backend.items("FineTuneJob")}
    if JOB not in taken:
        return JOB
    return next(f"{JOB}-{n}" for n in range(2, 10_000) if f"{JOB}-{n}" not in taken)


def stop_job(backend: LocalBackend, name: str) -> None:
    """Ctrl-C: suspend the job and wait for its trainer to end (it checkpoints on SIGTERM)."""
    from model_garden.api.labels import LABEL_FTJ_UID
    from model_garden.local import pods

    job = backend.get("FineTuneJob", name)
    if job is None or finished(job):
        return
    backend.patch("FineTuneJob", name, {"spec": {"suspend": True}})
    backend.refresh()
    uid = job["metadata"].get("uid")
    for pod in backend.store.list_raw("Pod"):
        if (pod["metadata"].get("labels") or {}).get(LABEL_FTJ_UID) == uid:
            pods.stop(backend.store, pod["metadata"]["name"], grace=90)
    backend.refresh()


def _deployment_name(backend: LocalBackend) -> str:
    taken = {d["metadata"]["name"] for d in backend.items("InferenceDeployment")}
    return next(n for n in (MODEL, *(f"{MODEL}-{i}" for i in range(2, 10_000))) if n not in taken)


@contextlib.contextmanager
def serving(backend: LocalBackend, version: str) -> Iterator[dict[str, Any]]:
    """``mg deploy VERSION --wait`` in local mode; the deployment is deleted (its server
    stopped) on the way out, Ctrl-C included. Yields the Ready InferenceDeployment."""
    name = _deployment_name(backend)
    create_deployment(backend, version, name, 1, 256, "float32")
    try:
        yield wait_ready(backend, name, 900)
    finally:
        backend.delete("InferenceDeployment", name)


def _size(n: Any) -> str:
    value = float(n or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{figure(value)} {unit}"
        value /= 1000
    return f"{figure(value)} GB"


def _chat(
    backend: LocalBackend, idep: dict[str, Any]
) -> tuple[str, dict[str, int], dict[str, Any]]:
    """One chat request to the deployment, then its status once the meter counted it."""
    import httpx

    status = idep["status"]
    reply = httpx.post(
        f"{status['endpoint']}/chat/completions",
        timeout=120,
        json={
            "model": status["servedModels"][0],
            "max_tokens": 24,
            "temperature": 0,
            "messages": [{"role": "user", "content": "Describe the pets.\n\na red cat"}],
        },
    ).json()
    name = idep["metadata"]["name"]
    for _ in range(60):
        backend.refresh()  # the operator's meter polling, locally
        idep = backend.get("InferenceDeployment", name) or idep
        carbon = (idep.get("status") or {}).get("carbon") or {}
        counted = int(carbon.get("tokens") or 0) >= reply["usage"]["total_tokens"]
        if counted and carbon.get("gPer1kTokens"):  # the meter's window has the request's energy
            break
        time.sleep(1)
    usage = {k: v for k, v in reply["usage"].items() if isinstance(v, int)}
    return reply["choices"][0]["message"]["content"], usage, idep


@click.command()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where local mode keeps objects and artifacts [default: $MODEL_GARDEN_HOME or "
    "~/.local/share/model-garden].",
)
@click.option("--steps", default=60, show_default=True, help="Training steps.")
@click.option("--country", default="FRA", show_default=True, help="ISO alpha-3 grid country.")
@click.option(
    "--method",
    type=click.Choice(["full", "lora", "qlora"]),
    default="full",
    show_default=True,
    help="Fine-tuning method.",
)
def quickstart(home: Path | None, steps: int, country: str, method: str) -> None:
    """Fine-tune the embedded tiny model, serve it with vLLM, and print what it all emitted.

    \b
    Example:
      mg quickstart --steps 30
    """
    from model_garden.local.store import default_home

    home = home or default_home()
    backend = LocalBackend(home, {"country": country})
    base, dataset = ensure_demo(home)
    name = _job_name(backend)
    words = {"full": "full fine-tuning", "lora": "LoRA", "qlora": "QLoRA"}[method]
    click.echo(f"FineTuneJob {name}: {words} of {base.name}, {steps} steps, CPU …")
    try:
        submit(backend, demo_job(name, base, dataset, steps, method, country))
        ftj = follow(backend, name)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: stopping the trainer …", err=True)
        stop_job(backend, name)
        raise SystemExit(EXIT_INTERRUPTED) from None
    if finished(ftj) != "Succeeded":
        failed = condition(ftj, "Failed")
        raise CliError(
            f"training failed: {failed.get('reason')}: {failed.get('message')} (mg jobs logs {name} --local)"
        )
    mv = backend.get("ModelVersion", ftj["status"]["modelVersion"]) or {}
    metrics, carbon = mv["spec"].get("metrics") or {}, mv["spec"].get("trainingCarbon") or {}
    from model_garden.api.display import format_emissions

    click.echo(
        f"ModelVersion {mv['metadata']['name']}: eval loss {figure(metrics.get('initialEvalLoss'))}"
        f" → {figure(metrics.get('evalLoss'))}, {energy(carbon.get('energyKwh'))},"
        f" {format_emissions(float(carbon.get('emissionsKg') or 0))} CO2e ({carbon.get('method')})"
    )
    ready = condition(mv, "Ready")
    click.echo(
        f"  {ready.get('reason')}: {_size((mv.get('status') or {}).get('sizeBytes'))}, {(mv.get('status') or {}).get('digest', '')[:19]}…"
    )
    click.echo(f"InferenceDeployment {MODEL}: serving {mv['metadata']['name']} with vLLM (CPU) …")
    try:
        with serving(backend, mv["metadata"]["name"]) as idep:
            click.echo(f"  endpoint {idep['status']['endpoint']}")
            text, usage, idep = _chat(backend, idep)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the server was stopped", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    carbon = (idep.get("status") or {}).get("carbon") or {}
    click.echo(f"  chat: {text!r}  usage {usage}")
    click.echo(
        f"serving: {carbon.get('tokens', 0)} tokens, {figure(float(carbon.get('energyKwh') or 0) * 3.6e6)} J"
        f" ({figure(float(carbon.get('activeEnergyKwh') or 0) * 3.6e6)} J active),"
        f" {figure(carbon.get('gPer1kTokens') or 0)} g CO2e per 1k tokens"
        f" ({carbon.get('method', 'estimated')}); the server is stopped"
    )
    artifact = backend.store.local_path(mv["spec"]["artifact"]["uri"])
    click.echo(f"\nMade, in {home}:")
    click.echo(f"  FineTuneJob  {name:<16} objects/finetunejobs/{name}.yaml")
    click.echo(
        f"  ModelVersion {mv['metadata']['name']:<16} objects/modelversions/{mv['metadata']['name']}.yaml"
    )
    click.echo(
        f"  artifact     {artifact.relative_to(home) if artifact.is_relative_to(home) else artifact}"
    )
    click.echo("Next, try:")
    click.echo(f"  mg jobs get {name} --home {home}")
    click.echo(f"  mg versions list --home {home}")
    click.echo(
        f"  mg train --home {home} --base-model {base} --dataset {dataset} --format alpaca"
        " --method full --max-steps 30 --model pets --wait"
    )
