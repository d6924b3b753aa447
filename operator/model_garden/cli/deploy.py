"""``model-garden deploy``, ``deployments list|get|scale|delete`` and ``serve``: InferenceDeployments.

In a cluster the operator runs vLLM in a Deployment; in local mode the operator's
InferenceDeployment planner runs here and the server pod is a local process (the serving
launcher: vLLM and the carbon meter) on free ports of 127.0.0.1.
"""

from __future__ import annotations

import time
from typing import Any

import click

from .errors import CliError, InvalidInput
from .output import OUTPUT_OPTION, age, condition, details, emit, figure
from .target import Backend, ClusterBackend, LocalBackend, Target, must_get, target_options
from .train import energy

KIND = "InferenceDeployment"
API = "modelgarden.dev/v1alpha1"
POLL_SECONDS = 2.0


def _ready(idep: dict[str, Any]) -> str:
    ready = condition(idep, "Ready")
    return f"{ready.get('status')} ({ready.get('reason')})" if ready else "-"


def _carbon(idep: dict[str, Any]) -> dict[str, Any]:
    return (idep.get("status") or {}).get("carbon") or {}


def _columns() -> list[tuple[str, Any]]:
    return [
        ("NAME", lambda d: d["metadata"]["name"]),
        ("READY", _ready),
        (
            "REPLICAS",
            lambda d: (
                f"{(d.get('status') or {}).get('readyReplicas', 0)}/{(d.get('spec') or {}).get('replicas', 1)}"
            ),
        ),
        ("VERSION", lambda d: (d.get("status") or {}).get("modelVersion")),
        ("ENDPOINT", lambda d: (d.get("status") or {}).get("endpoint")),
        ("TOKENS", lambda d: _carbon(d).get("tokens")),
        ("G CO2E/1K TOK", lambda d: figure(_carbon(d).get("gPer1kTokens"))),
        ("AGE", lambda d: age(d["metadata"].get("creationTimestamp"))),
    ]


def _server_failed(backend: Backend, idep: dict[str, Any]) -> str | None:
    """Local mode: the server process of this deployment exited (its log's last line)."""
    if not isinstance(backend, LocalBackend):
        return None
    from model_garden.api.labels import LABEL_IDEP_UID
    from model_garden.local import pods

    uid = idep["metadata"].get("uid")
    for pod in backend.store.list_raw("Pod"):
        if (pod["metadata"].get("labels") or {}).get(LABEL_IDEP_UID) != uid:
            continue
        if (pod.get("status") or {}).get("phase") == "Failed":
            tail = pods.log_text(backend.store, pod["metadata"]["name"]).strip().splitlines()
            log = backend.store.pod_dir(pod["metadata"]["name"]) / pods.LOG_FILE
            return f"the server exited: {tail[-1] if tail else 'no output'} (log: {log})"
    return None


def wait_ready(backend: Backend, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        backend.refresh()
        idep = must_get(backend, KIND, name)
        ready = condition(idep, "Ready")
        if ready.get("status") == "True":
            return idep
        failed = _server_failed(backend, idep)
        if failed:
            raise CliError(f"InferenceDeployment {name}: {failed}")
        line = f"  {ready.get('reason', 'Pending')}: {ready.get('message', '')}"
        if line != last:
            click.echo(line)
            last = line
        if time.monotonic() > deadline:
            raise CliError(
                f"InferenceDeployment {name} was not Ready in {timeout:.0f}s: {line.strip()}"
            )
        time.sleep(POLL_SECONDS)


def create_deployment(
    backend: Backend,
    version: str,
    name: str | None,
    replicas: int,
    max_model_len: int | None,
    dtype: str | None,
    model_cache: str | None = None,
) -> dict[str, Any]:
    mv = must_get(backend, "ModelVersion", version)
    if backend.local and replicas > 1:
        raise InvalidInput("local mode serves one replica per deployment (its pods share ports)")
    if backend.local and model_cache:
        raise InvalidInput(
            "--model-cache is for a cluster: in local mode every server already downloads into"
            " this machine's one cache"
        )
    engine: dict[str, Any] = {}
    if max_model_len:
        engine["maxModelLen"] = max_model_len
    if dtype:
        engine["dtype"] = dtype
    body: dict[str, Any] = {
        "apiVersion": API,
        "kind": KIND,
        "metadata": {"name": name or mv["spec"]["model"]},
        "spec": {"modelVersion": version, "replicas": replicas, "engine": engine},
    }
    if model_cache:
        body["spec"]["modelCache"] = model_cache
    from pydantic import ValidationError

    from model_garden.api import InferenceDeployment
    from model_garden.api.common import describe_errors

    try:
        InferenceDeployment.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(
            f"InferenceDeployment {body['metadata']['name']!r} is invalid: {'; '.join(describe_errors(exc)[:3])}"
        ) from exc
    created = backend.create(body)
    backend.refresh()
    return created


def _deploy_options(fn: Any) -> Any:
    fn = click.option("--name", help="Deployment name [default: the version's model].")(fn)
    fn = click.option("--replicas", type=click.IntRange(min=0), default=1, show_default=True)(fn)
    fn = click.option("--max-model-len", type=click.IntRange(min=16), help="Context length cap.")(
        fn
    )
    fn = click.option(
        "--dtype", type=click.Choice(["auto", "float16", "bfloat16", "float32"]), help="vLLM dtype."
    )(fn)
    fn = click.option(
        "--timeout", type=float, default=900, show_default=True, help="Seconds to wait."
    )(fn)
    return fn


@click.command()
@click.argument("version")
@_deploy_options
@click.option("--wait", is_flag=True, help="Wait until it serves (Ready).")
@click.option(
    "--model-cache",
    metavar="pvc://CLAIM/PATH",
    help="Claim folder the pods download s3:// and hf:// models into, shared by replicas.",
)
@target_options
def deploy(
    target: Target,
    version: str,
    name: str | None,
    replicas: int,
    max_model_len: int | None,
    dtype: str | None,
    timeout: float,
    wait: bool,
    model_cache: str | None,
) -> None:
    """Serve a ModelVersion: create an InferenceDeployment (vLLM, OpenAI-compatible).

    \b
    Example:
      mg deploy pets-v1 --local --max-model-len 256 --wait
      mg chat pets "Describe the pets."
      mg deploy qwen-v1 --replicas 3 --model-cache pvc://model-cache/team
    """
    backend = target.backend()
    backend.refresh()
    created = create_deployment(backend, version, name, replicas, max_model_len, dtype, model_cache)
    name = created["metadata"]["name"]
    click.echo(f"inferencedeployment/{name} created ({backend.where})")
    if wait:
        idep = wait_ready(backend, name, timeout)
        click.echo(f"serving {version} at {(idep.get('status') or {}).get('endpoint')}")


@click.command()
@click.argument("version")
@_deploy_options
@click.option("--detach", is_flag=True, help="Return once it serves; the server keeps running.")
@target_options
def serve(
    target: Target,
    version: str,
    name: str | None,
    replicas: int,
    max_model_len: int | None,
    dtype: str | None,
    timeout: float,
    detach: bool,
) -> None:
    """Serve a ModelVersion on this machine, in the foreground (Ctrl-C stops and removes it).

    \b
    Example:
      mg serve pets-v1 --max-model-len 256
    """
    target.local = True
    backend = target.backend()
    backend.refresh()
    created = create_deployment(backend, version, name, replicas, max_model_len, dtype)
    name = created["metadata"]["name"]
    try:
        idep = wait_ready(backend, name, timeout)
        url = (idep.get("status") or {}).get("endpoint")
        click.echo(
            f"serving {version} at {url} (model {', '.join(idep['status'].get('servedModels', []))})"
        )
        if detach:
            click.echo(f"stop it: mg deployments delete {name} --local")
            return
        click.echo("Ctrl-C stops it")
        while True:
            time.sleep(POLL_SECONDS)
            backend.refresh()  # the meter's carbon reaches the status
    except KeyboardInterrupt:
        click.echo("\nstopping …", err=True)
    except CliError:
        backend.delete(KIND, name)
        raise
    backend.delete(KIND, name)
    idep_gone = backend.get(KIND, name) is None
    click.echo(f"inferencedeployment/{name} {'deleted' if idep_gone else 'deletion pending'}")


@click.group()
def deployments() -> None:
    """InferenceDeployments: list, inspect, scale, delete.

    \b
    Example:
      mg deployments list
      mg deployments scale pets --replicas 2
      mg deployments delete pets
    """


@deployments.command("list")
@OUTPUT_OPTION
@target_options
def list_(target: Target, output: str) -> None:
    """List InferenceDeployments.

    \b
    Example:
      mg deployments list -o yaml
    """
    backend = target.backend()
    backend.refresh()
    emit(backend.items(KIND), output, _columns())


@deployments.command()
@click.argument("name")
@OUTPUT_OPTION
@target_options
def get(target: Target, name: str, output: str) -> None:
    """Show one InferenceDeployment: what it serves, where, and its serving carbon.

    \b
    Example:
      mg deployments get pets
    """
    backend = target.backend()
    backend.refresh()
    idep = must_get(backend, KIND, name)
    if output != "table":
        emit(idep, output, [])
        return
    status, carbon = idep.get("status") or {}, _carbon(idep)
    details(
        [
            ("name", name),
            ("ready", _ready(idep)),
            ("message", condition(idep, "Ready").get("message")),
            ("version", status.get("modelVersion")),
            ("served models", ", ".join(status.get("servedModels") or []) or None),
            ("endpoint", status.get("endpoint")),
            ("tokens", carbon.get("tokens")),
            ("energy", energy(carbon.get("energyKwh"))),
            ("CO2e", f"{figure(carbon.get('emissionsKg'))} kg ({carbon.get('method', '-')})"),
            ("g CO2e / 1k tokens", figure(carbon.get("gPer1kTokens"))),
            ("created", idep["metadata"].get("creationTimestamp")),
        ]
    )


def scale_deployment(backend: Backend, name: str, replicas: int) -> int:
    """Set spec.replicas (a cluster: through the /scale subresource, as kubectl scale and an
    autoscaler do); the replicas it had before."""
    idep = must_get(backend, KIND, name)
    before = int((idep.get("spec") or {}).get("replicas", 1))
    if isinstance(backend, ClusterBackend):
        backend.guarded(
            lambda: backend.x.merge_patch(
                backend._ref(KIND, name), {"spec": {"replicas": replicas}}, subresource="scale"
            ),
            f"scaling {KIND} {name}",
        )
        return before
    if backend.local and replicas > 1:
        raise InvalidInput(
            f"local mode serves at most one replica per deployment (its pods share ports): "
            f"--replicas {replicas} refused; use 0 or 1, or a cluster"
        )
    backend.patch(KIND, name, {"spec": {"replicas": replicas}})
    backend.refresh()
    return before


@deployments.command()
@click.argument("name")
@click.option(
    "--replicas", type=click.IntRange(min=0), required=True, help="Server pods wanted (0 stops)."
)
@target_options
def scale(target: Target, name: str, replicas: int) -> None:
    """Scale an InferenceDeployment: spec.replicas through its /scale subresource.

    Local mode serves one replica at most (0 stops the server, 1 starts it again).

    \b
    Example:
      mg deployments scale pets --replicas 3
      mg deployments scale pets --replicas 0 --local
    """
    backend = target.backend()
    backend.refresh()
    before = scale_deployment(backend, name, replicas)
    click.echo(f"inferencedeployment/{name} scaled {before} → {replicas} replicas")


@deployments.command()
@click.argument("name")
@target_options
def delete(target: Target, name: str) -> None:
    """Delete an InferenceDeployment (local mode: its server is stopped before this returns).

    \b
    Example:
      mg deployments delete pets --local
    """
    backend = target.backend()
    backend.refresh()
    backend.delete(KIND, name)
    click.echo(f"inferencedeployment/{name} deleted")
