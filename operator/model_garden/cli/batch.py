"""``model-garden batch``: run a JSONL file of OpenAI requests against a deployment or a URL.

The batch runner of :mod:`model_garden.serving.batch` (its server engine), here: the output is
the OpenAI Batch output format in input order, with a summary of the batch's tokens, energy and
emissions. Against a deployment, the energy is the difference of its meter's readings over the
batch (the meter's address comes from the deployment's serving config); against a URL, from
``--meter`` when given, else this machine's energy is measured (or estimated) over the batch.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from .errors import CliError, InvalidInput, Unreachable
from .openai_http import api_key as key_from_env
from .output import OUTPUT_OPTION, details, emit, figure
from .target import Backend, ClusterBackend, LocalBackend, Target, must_get, target_options


def _config_map(backend: Backend, name: str) -> dict[str, Any] | None:
    from model_garden.operator.inferencedeployment.objects import config_map_name

    cm_name = config_map_name(name)
    if isinstance(backend, LocalBackend):
        return backend.store.get("ConfigMap", cm_name)
    if isinstance(backend, ClusterBackend):
        from model_garden.operator.plan import ObjectRef

        ref = ObjectRef("v1", "ConfigMap", backend.namespace, cm_name)
        try:
            found: dict[str, Any] | None = backend.guarded(
                lambda: backend.x.get(ref), f"reading ConfigMap {cm_name}"
            )
        except CliError:  # a user who may not read ConfigMaps still gets the batch, unmetered
            return None
        return found
    return None


def resolve(target: Target, where: str, meter: str | None) -> tuple[str, str | None]:
    """(base URL, meter URL or None) of a deployment name or a URL."""
    if where.startswith(("http://", "https://")):
        return where.rstrip("/"), meter
    backend = target.backend()
    backend.refresh()
    idep = must_get(backend, "InferenceDeployment", where)
    endpoint = (idep.get("status") or {}).get("endpoint")
    if not endpoint:
        raise CliError(
            f"InferenceDeployment {where} has no endpoint yet (mg deployments get {where})"
        )
    if meter:
        return str(endpoint).rstrip("/"), meter
    from model_garden.operator.inferencedeployment.objects import CONFIG_KEY

    cm = _config_map(backend, where)
    port = None
    if cm is not None:
        port = (
            json.loads((cm.get("data") or {}).get(CONFIG_KEY, "{}")).get("ports", {}).get("meter")
        )
    host = urlsplit(str(endpoint)).hostname
    return str(endpoint).rstrip("/"), f"http://{host}:{port}" if port and host else None


@click.command()
@click.argument("where")
@click.argument("input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_file", metavar="OUTPUT", type=click.Path(dir_okay=False))
@click.option(
    "--offline",
    is_flag=True,
    help="WHERE is a ModelVersion: run vLLM's offline engine on it here (local mode).",
)
@click.option("--meter", help="The server's meter URL (with a URL) [default: the deployment's].")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--summary",
    "summary_file",
    type=click.Path(dir_okay=False),
    help="Summary JSON [default: OUTPUT.summary.json].",
)
@click.option(
    "--country", default="USA", show_default=True, help="Grid, when this machine is measured."
)
@click.option("--region", help="Grid region, when this machine is measured.")
@OUTPUT_OPTION
@target_options
def batch(
    target: Target,
    where: str,
    input_file: str,
    output_file: str,
    offline: bool,
    meter: str | None,
    concurrency: int,
    summary_file: str | None,
    country: str,
    region: str | None,
    output: str,
) -> None:
    """Run INPUT, a JSONL file of OpenAI batch requests, against a deployment or a URL, or
    (--offline) on a ModelVersion with vLLM's offline engine, no server needed.

    Each line: {"custom_id", "method": "POST", "url": "/v1/chat/completions" or
    "/v1/completions", "body": {"model", …}}. OUTPUT gets one result line per request, in
    input order (OpenAI's Batch output format); the summary (requests, tokens, energy, CO2e)
    is printed and written next to it. Exits 1 when a request failed.

    \b
    Example:
      mg batch pets requests.jsonl results.jsonl
      mg batch http://127.0.0.1:8000/v1 requests.jsonl results.jsonl -o json
      mg batch pets-v1 --offline requests.jsonl results.jsonl
    """
    from model_garden.serving import batch as runner
    from model_garden.serving.batch_format import (
        BatchInputError,
        read_requests,
        summary,
        usage_totals,
        write_results,
    )

    try:
        requests = read_requests(Path(input_file))
    except BatchInputError as exc:
        raise InvalidInput(f"{input_file}: {'; '.join(exc.problems[:5])}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{input_file}: {exc}") from exc
    summary_path = Path(summary_file or f"{output_file}.summary.json")
    if offline:
        doc = _offline(target, where, input_file, output_file, summary_path, country, region)
        _report(doc, output, output_file, summary_path)
        return
    base, meter_url = resolve(target, where, meter)
    api_key = key_from_env()
    import httpx

    try:
        if meter_url:
            before = runner.meter_carbon(meter_url)
            started = time.monotonic()
            results = runner.run_on_server(requests, base, api_key, concurrency)
            duration = time.monotonic() - started
            prompt, completion = usage_totals(results)
            after = runner.wait_meter_caught_up(meter_url, before, prompt + completion, 30)
            carbon, source = runner.carbon_delta(before, after), "meter"
        else:
            results, carbon, duration, _ = runner.measure(
                lambda ready: runner.run_on_server(requests, base, api_key, concurrency),
                country,
                region,
                pid=None,
            )
            source = "machine"
    except httpx.HTTPError as exc:
        raise Unreachable(f"cannot read the meter {meter_url}: {exc}") from exc
    unreachable = [r for r in results if (r.error or {}).get("code") == "connection_error"]
    if len(unreachable) == len(results):
        raise Unreachable(f"cannot reach {base}: {unreachable[0].error['message']}")  # type: ignore[index]
    write_results(Path(output_file), results)
    doc = summary(results, carbon, duration, source)
    summary_path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    _report(doc, output, output_file, summary_path)


def _offline(
    target: Target,
    version: str,
    input_file: str,
    output_file: str,
    summary_path: Path,
    country: str,
    region: str | None,
) -> dict[str, Any]:
    """``python -m model_garden.serving.batch`` with vLLM's offline engine on a Ready version's
    files, in the ML runtime. Requests name the version's model (``spec.model``), as they would
    a deployment of it; an adapter is served on its base under that name."""
    from model_garden.runtime import RuntimeMissing, runtime_env, runtime_python

    from .export import grid, local_backend, ready_version, version_artifact

    backend = local_backend(target, "batch --offline")
    mv = ready_version(backend, version)
    artifact = version_artifact(backend, mv)
    name = str(mv["spec"]["model"])
    country, region = grid(country, region)
    argv = [input_file, output_file, "--summary", str(summary_path)]
    argv += ["--country", country] + (["--region", region] if region else [])
    if artifact.adapter:
        argv += ["--model", str(artifact.base_model), "--adapter", f"{name}={artifact.path}"]
        argv += ["--served-name", f"{name}-base"]
    else:
        argv += ["--model", artifact.path, "--served-name", name]
    try:
        python = runtime_python()
    except RuntimeMissing as exc:
        raise CliError(str(exc)) from exc
    from .output import console

    summary_path.unlink(missing_ok=True)  # what is read back is this run's
    with console(stderr=True).status(f"{version}: batch on vLLM's offline engine…"):
        proc = subprocess.run(
            [python, "-m", "model_garden.serving.batch", *argv],
            env=runtime_env(),
            capture_output=True,
            text=True,
        )
    if proc.returncode not in (0, 1) or not summary_path.is_file():  # 1: a request failed
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CliError(f"the offline batch exited {proc.returncode}: {tail}")
    doc: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8"))
    from .ledger import record

    record(backend, version, "batch", batch_carbon(doc))
    return doc


def batch_carbon(doc: dict[str, Any]) -> dict[str, Any]:
    """The whole offline batch (the engine's start-up included: it ran for this batch alone)
    as the version's ledger counts an operation: kWh, kg, method."""
    wire = doc.get("carbon") or {}
    startup = doc.get("engineStartup") or {}
    joules = float(wire.get("energyJoules") or 0.0) + float(startup.get("energyJoules") or 0.0)
    grams = float(wire.get("emissionsGrams") or 0.0) + float(startup.get("emissionsGrams") or 0.0)
    return {"energyKwh": joules / 3.6e6, "emissionsKg": grams / 1000.0, "method": "estimated"}


def _report(doc: dict[str, Any], output: str, output_file: str, summary_path: Path) -> None:
    """The summary as a table (or JSON/YAML); exit 1 when a request failed."""
    if output != "table":
        emit(doc, output, [])
    else:
        from .train import energy

        wire = doc["carbon"]
        details(
            [
                ("requests", f"{doc['succeeded']} succeeded, {doc['failed']} failed"),
                ("tokens", f"{doc['promptTokens']} prompt + {doc['completionTokens']} generated"),
                ("duration", f"{figure(doc['durationSeconds'])} s"),
                ("energy", energy(float(wire.get("energyJoules", 0.0)) / 3.6e6)),
                ("CO2e", f"{figure(wire.get('emissionsGrams', 0.0))} g ({doc['carbonSource']})"),
                ("g CO2e / 1k tokens", figure(wire.get("gramsPer1KTokens"))),
                ("results", output_file),
                ("summary", str(summary_path)),
            ]
        )
    if doc["failed"]:
        raise SystemExit(1)
