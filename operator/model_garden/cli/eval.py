"""``model-garden eval VERSION --dataset FILE``: loss, perplexity and sample generations.

The evaluation runs in the ML runtime (``python -m model_garden.evaluation``) with the
trainer's own dataset checks, template, labels and loss, carbon-tracked. Its report (samples
included) is ``eval.json`` beside the version's artifact; its figures go to the version's
``status.evaluation``, which ``mg versions get`` and the card of ``mg export`` show.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from model_garden.api.labels import ANNOTATION_EVALUATION

from .cluster_task import cluster_task_options
from .errors import CliError, InvalidInput
from .export import grid, ready_version, run_program, spent, version_artifact
from .ledger import record
from .output import OUTPUT_OPTION, emit, figure
from .target import ClusterBackend, LocalBackend, Target, target_options

FORMATS = ("auto", "alpaca", "chat", "completion", "text")


def dataset_path(backend: LocalBackend, dataset: str) -> Path:
    """A path, or a ``file://`` / ``pvc://`` URI (a claim's folder in the store)."""
    path = backend.store.local_path(dataset) if "://" in dataset else Path(dataset).expanduser()
    if not path.exists():
        raise InvalidInput(f"--dataset {dataset}: no such file or directory")
    return path.resolve()


def report_uri(artifact_uri: str) -> str:
    """``…/v1/adapter`` → ``…/v1/eval.json``: the report sits beside the artifact."""
    from model_garden.api.offline import EVAL_RESULT_FILE

    return artifact_uri.rstrip("/").rsplit("/", 1)[0] + "/" + EVAL_RESULT_FILE


def status_evaluation(result: dict[str, Any], report: str) -> dict[str, Any]:
    """The version's ``status.evaluation`` from a result (checked against the API model)."""
    from model_garden.api.modelversion import Evaluation

    carbon = result.get("carbon") or {}
    evaluation = Evaluation.model_validate(
        {
            "dataset": result["dataset"],
            "loss": result["loss"],
            "perplexity": result["perplexity"],
            "examples": result["examples"],
            "tokens": result["tokens"],
            "evaluatedAt": result["evaluatedAt"],
            "energyKwh": carbon.get("energyKwh", 0.0),
            "emissionsKg": carbon.get("emissionsKg", 0.0),
            "method": carbon.get("method", "estimated"),
            "report": report,
        }
    )
    return evaluation.to_wire()


@click.command("eval")
@click.argument("version")
@click.option("--dataset", required=True, help="Held-out data: a file, or file:// / pvc:// URI.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--prompt", "prompts", multiple=True, help="A prompt to generate for (repeatable).")
@click.option("--max-new-tokens", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option("--max-seq-length", type=click.IntRange(min=16), default=2048, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-examples", type=click.IntRange(min=1), help="Score the first N only.")
@click.option("--chat-template", help="Named template (chatml, llama3, …); default: the model's.")
@click.option("--country", help="ISO alpha-3 country of this machine's grid [default: config].")
@click.option("--region", help="Grid region, e.g. california [default: config].")
@click.option("--timeout", type=float, help="Give up after this many seconds.")
@cluster_task_options
@OUTPUT_OPTION
@target_options
def eval_(
    target: Target,
    version: str,
    dataset: str,
    fmt: str,
    prompts: tuple[str, ...],
    max_new_tokens: int,
    max_seq_length: int,
    batch_size: int,
    max_examples: int | None,
    chat_template: str | None,
    country: str | None,
    region: str | None,
    timeout: float | None,
    image: str | None,
    cpu: str | None,
    memory: str | None,
    output: str,
) -> None:
    """Evaluate a ModelVersion on a held-out dataset: loss, perplexity, sample generations.

    The figures are saved with the version (status.evaluation; the full report, samples
    included, is eval.json beside its artifact) and shown by `mg versions get`. Against a
    cluster it runs as a Job there (--dataset a pvc:// URI); the report goes to the claim.

    \b
    Example:
      mg eval pets-v1 --dataset held-out.jsonl --prompt "Describe the pets. a red cat"
      mg eval pets-v1 --dataset pvc://artifacts/ml-team/datasets/held.jsonl --context prod
    """
    from model_garden.api.offline import EVAL_RESULT_FILE, EvalConfig

    backend = target.backend()
    mounts: Any = None
    if isinstance(backend, ClusterBackend):
        from model_garden.operator.storage import Mounts, resolve

        from .cluster_task import claim_uri, cluster_artifact

        if not dataset.startswith("pvc://"):
            raise InvalidInput(f"--dataset {dataset}: in a cluster, a pvc:// URI on a claim")
        mv = ready_version(backend, version)
        mounts = Mounts()
        artifact = cluster_artifact(backend, mv, mounts)
        data = mounts.add(resolve(dataset))
        report = claim_uri(backend, mv, "evaluations", version, EVAL_RESULT_FILE)
        result_path = (
            f"{mounts.add(resolve(report.rsplit('/', 1)[0]), writable=True)}/{EVAL_RESULT_FILE}"
        )
    else:
        assert isinstance(backend, LocalBackend)
        data = str(dataset_path(backend, dataset))
        mv = ready_version(backend, version)
        artifact = version_artifact(backend, mv)
        result_path = str(Path(artifact.path).parent / EVAL_RESULT_FILE)
        report = report_uri(str(((mv.get("spec") or {}).get("artifact") or {}).get("uri")))
    country, region = grid(country, region)
    document = EvalConfig(
        artifact=artifact,
        dataset_path=data,
        dataset_uri=dataset,
        dataset_format=fmt,
        chat_template=chat_template,
        max_seq_length=max_seq_length,
        batch_size=batch_size,
        max_examples=max_examples,
        prompts=list(prompts),
        max_new_tokens=max_new_tokens,
        result_path=result_path,
        country=country,
        region=region,
    )
    if isinstance(backend, ClusterBackend):
        from .cluster_task import run_task

        result = run_task(
            backend,
            mv,
            "eval",
            document,
            mounts,
            {"image": image, "cpu": cpu, "memory": memory},
            f"{version}: evaluating…",
            timeout,
        )
    else:
        result = run_program(
            "model_garden.evaluation", document, f"{version}: evaluating…", timeout
        )
    if result.get("outcome") != "Succeeded":
        message = f"eval of {version} failed: {result.get('reason')}: {result.get('message')}"
        if result.get("reason") == "DatasetError":
            raise InvalidInput(message)
        raise CliError(message)
    # Users write metadata, not status: the reconciler makes this status.evaluation.
    evaluation = status_evaluation(result, report)
    note = {ANNOTATION_EVALUATION: json.dumps(evaluation, separators=(",", ":"))}
    backend.patch("ModelVersion", version, {"metadata": {"annotations": note}})
    record(backend, version, "evaluation", result.get("carbon") or {})
    if output != "table":
        emit(result, output, [])
        return
    click.echo(
        f"evaluated {version} on {dataset}: loss {figure(result['loss'], 4)}, perplexity"
        f" {figure(result['perplexity'], 4)} ({result['examples']} examples,"
        f" {result['tokens']} tokens)"
    )
    click.echo(f"  spent {spent(result.get('carbon') or {})}")
    where = report if isinstance(backend, ClusterBackend) else result_path
    click.echo(f"  saved with the version (mg versions get {version}) and in {where}")
    for sample in result.get("samples") or []:
        click.echo(f"prompt: {json.dumps(sample['prompt'], ensure_ascii=False)}")
        click.echo("  → " + sample["completion"].strip().replace("\n", "\n    "))
