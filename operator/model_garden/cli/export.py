"""``model-garden export VERSION --format merged|gguf-f16|gguf-q8_0 --out DIR``.

An adapter version is merged into its base and saved as safetensors with its tokenizer; a
merged or full version is copied; the GGUF formats convert that with llama.cpp's converter
(``$MODEL_GARDEN_LLAMA_CPP``, from ``scripts/build-llama-cpp.sh``). The work runs in the ML runtime
(``python -m model_garden.export``, like the trainer), carbon-tracked; the result, energy and
emissions included, is printed and kept as ``export.json`` in the output folder. The helpers
here (a Ready version's artifact as paths of this machine, a program run in the runtime) are
shared with ``mg eval``.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click

from . import config as cli_config
from .cluster_task import cluster_task_options
from .errors import CliError, InvalidInput
from .output import OUTPUT_OPTION, condition, emit, figure
from .target import Backend, ClusterBackend, LocalBackend, Target, must_get, target_options

KIND = "ModelVersion"
LLAMA_CPP_ENV = "MODEL_GARDEN_LLAMA_CPP"
"""The folder of ``scripts/build-llama-cpp.sh``: the GGUF converter (and a llama_cpp Python)."""
MAX_BASE_HOPS = 8
"""An adapter's base may be another version; a longer chain than this is a loop."""


def local_backend(target: Target, command: str) -> LocalBackend:
    """These commands read the artifact's files, so they run where the files are: local mode."""
    backend = target.backend()
    if not isinstance(backend, LocalBackend):
        raise InvalidInput(
            f"mg {command} reads the version's files on this machine: use local mode (--local);"
            f" {backend.where} keeps its artifacts on the cluster's claims"
        )
    return backend


def ready_version(backend: Backend, name: str) -> dict[str, Any]:
    """The ModelVersion, verified: only an artifact whose digest was checked is used."""
    backend.refresh()
    mv = must_get(backend, KIND, name)
    ready = condition(mv, "Ready")
    if ready.get("status") != "True":
        raise CliError(
            f"ModelVersion {name} is not Ready ({ready.get('reason') or 'not verified yet'}):"
            f" {ready.get('message') or 'its artifact is being verified; try again shortly'}"
        )
    return mv


def _hub_revision(backend: LocalBackend, mv: dict[str, Any]) -> str | None:
    """The hub revision training used for an adapter's base (its job says; the version not)."""
    job = ((mv.get("spec") or {}).get("source") or {}).get("fineTuneJob")
    ftj = backend.get("FineTuneJob", job) if job else None
    hub = (((ftj or {}).get("spec") or {}).get("baseModel") or {}).get("hub") or {}
    return hub.get("revision")


def version_artifact(backend: LocalBackend, mv: dict[str, Any]) -> Any:
    """The version's weights as paths here; an adapter's base resolved like serving does (a
    ModelVersion name → its artifact, a URI → its path, else a hub id)."""
    from model_garden.api.offline import VersionArtifact

    name = mv["metadata"]["name"]
    artifact = (mv.get("spec") or {}).get("artifact") or {}
    path = backend.store.local_path(str(artifact.get("uri")))
    if not path.exists():
        raise CliError(f"ModelVersion {name}: its artifact {artifact.get('uri')} is not at {path}")
    if artifact.get("format") != "adapter":
        return VersionArtifact(model_version=name, path=str(path), adapter=False)
    base, hops = str(artifact.get("baseModel") or ""), 0
    while (base_mv := backend.get(KIND, base)) is not None:
        hops += 1
        base_artifact = (base_mv.get("spec") or {}).get("artifact") or {}
        if base_artifact.get("format") != "adapter":
            base = str(backend.store.local_path(str(base_artifact.get("uri"))))
            break
        # an adapter trained on from an adapter version keeps that version's base
        base = str(base_artifact.get("baseModel") or "")
        if hops > MAX_BASE_HOPS:
            raise CliError(f"ModelVersion {name}: its chain of adapter bases does not end")
    if "://" in base:
        base = str(backend.store.local_path(base))
    return VersionArtifact(
        model_version=name,
        path=str(path),
        adapter=True,
        base_model=base,
        base_model_revision=_hub_revision(backend, mv),
    )


def grid(country: str | None, region: str | None) -> tuple[str, str | None]:
    """The grid of this machine: the flags, else the CLI's defaults, else the operator's."""
    settings = cli_config.load()
    chosen = country or settings.get("country") or "USA"
    return str(chosen).upper(), region or settings.get("region")


def run_program(module: str, document: Any, what: str, timeout: float | None) -> dict[str, Any]:
    """Run ``python -m MODULE --config FILE`` in the ML runtime; its result (last stdout line)."""
    from model_garden.runtime import RuntimeMissing, runtime_env, runtime_python

    try:
        python = runtime_python()
    except RuntimeMissing as exc:
        raise CliError(str(exc)) from exc
    from .output import console

    with tempfile.TemporaryDirectory(prefix="mg-") as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(document.model_dump_json(by_alias=True, exclude_none=True))
        with console(stderr=True).status(what):
            try:
                proc = subprocess.run(
                    [python, "-m", module, "--config", str(config)],
                    env=runtime_env(),
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired as exc:
                raise CliError(f"{module} did not finish in {timeout:.0f}s") from exc
    lines = proc.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError) as exc:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CliError(f"{module} exited {proc.returncode}: {tail}") from exc
    return result


def gguf_converter() -> str:
    """llama.cpp's converter, from the folder ``scripts/build-llama-cpp.sh`` prints."""
    import os

    home = os.environ.get(LLAMA_CPP_ENV)
    if not home:
        raise InvalidInput(
            f"GGUF export needs llama.cpp's converter: set {LLAMA_CPP_ENV} with"
            f' `export {LLAMA_CPP_ENV}="$(scripts/build-llama-cpp.sh)"`'
        )
    converter = Path(home) / "converter" / "convert_hf_to_gguf.py"
    if not converter.is_file():
        raise InvalidInput(f"{LLAMA_CPP_ENV}={home} has no converter/convert_hf_to_gguf.py")
    return str(converter)


def spent(carbon: dict[str, Any]) -> str:
    """``0.31 mWh, 0.02 mg CO2e (estimated, FRA)``: a result's carbon for people."""
    from model_garden.api.display import format_emissions

    from .train import energy

    where = carbon.get("country") or "?"
    if carbon.get("region"):
        where = f"{where}/{carbon['region']}"
    return (
        f"{energy(carbon.get('energyKwh', 0.0))},"
        f" {format_emissions(float(carbon.get('emissionsKg', 0.0)))} CO2e"
        f" ({carbon.get('method', 'estimated')}, {where})"
    )


def _out_dir(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"--out {out}: exists and is not an empty folder")
    return out.resolve()


@click.command()
@click.argument("version")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["merged", "gguf-f16", "gguf-q8_0"]),
    default="merged",
    show_default=True,
    help="merged: safetensors + tokenizer; gguf-f16, gguf-q8_0: one llama.cpp file.",
)
@click.option(
    "--out",
    help="The folder to write (new, or empty); in a cluster a pvc:// URI"
    " [default there: pvc://<the version's claim>/<namespace>/exports/<version>-<format>].",
)
@cluster_task_options
@click.option("--country", help="ISO alpha-3 country of this machine's grid [default: config].")
@click.option("--region", help="Grid region, e.g. california [default: config].")
@click.option("--timeout", type=float, help="Give up after this many seconds.")
@OUTPUT_OPTION
@target_options
def export(
    target: Target,
    version: str,
    fmt: str,
    out: str | None,
    image: str | None,
    cpu: str | None,
    memory: str | None,
    country: str | None,
    region: str | None,
    timeout: float | None,
    output: str,
) -> None:
    """Export a ModelVersion as a standalone model: safetensors + tokenizer, or GGUF.

    An adapter is merged into its base model; a merged or full version is copied. GGUF
    (f16 or Q8_0) is converted from that by llama.cpp's converter ($MODEL_GARDEN_LLAMA_CPP,
    from scripts/build-llama-cpp.sh). The export
    runs in the ML runtime and is carbon-tracked: energy and CO2e are printed and kept in
    DIR/export.json. Against a cluster it runs as a Job there, writing to the claim.

    \b
    Example:
      mg export pets-v1 --format merged --out ./pets-merged
      mg export pets-v1 --format gguf-q8_0 --out ./pets-gguf
      mg export pets-v1 --context prod   # a Job in the cluster, onto the version's claim
    """
    from model_garden.api.offline import ExportConfig

    backend = target.backend()
    cluster = isinstance(backend, ClusterBackend)
    if cluster and fmt != "merged":
        raise InvalidInput(
            f"--format {fmt}: in a cluster mg export makes merged safetensors (the runtime image"
            " carries no llama.cpp converter); export merged, then convert it locally"
        )
    if cluster and out and not out.startswith("pvc://"):
        raise InvalidInput(f"--out {out}: in a cluster, a pvc:// URI on a claim")
    if not cluster:
        if not out:
            raise InvalidInput("--out is needed: the folder to write (new, or empty)")
        folder = _out_dir(Path(out))
        converter = gguf_converter() if fmt.startswith("gguf") else None
    mv = ready_version(backend, version)
    country, region = grid(country, region)
    mounts: Any = None
    if isinstance(backend, ClusterBackend):
        from model_garden.operator.storage import Mounts, resolve

        from .cluster_task import claim_uri, cluster_artifact

        mounts = Mounts()
        artifact = cluster_artifact(backend, mv, mounts)
        out = out or claim_uri(backend, mv, "exports", f"{version}-{fmt}")
        out_dir, converter, shown = mounts.add(resolve(out), writable=True), None, out
    else:
        assert isinstance(backend, LocalBackend)
        out_dir = shown = str(folder)
        artifact = version_artifact(backend, mv)
    document = ExportConfig(
        artifact=artifact,
        format=fmt,
        out_dir=out_dir,
        country=country,
        region=region,
        evaluation=(mv.get("status") or {}).get("evaluation"),
        converter=converter,
    )
    how = "merging the adapter into its base" if artifact.adapter else "copying the weights"
    if isinstance(backend, ClusterBackend):
        from .cluster_task import run_task

        result = run_task(
            backend,
            mv,
            "export",
            document,
            mounts,
            {"image": image, "cpu": cpu, "memory": memory},
            f"{version}: {how}…",
            timeout,
        )
    else:
        result = run_program("model_garden.export", document, f"{version}: {how}…", timeout)
    if result.get("outcome") != "Succeeded":
        raise CliError(
            f"export of {version} failed: {result.get('reason')}: {result.get('message')}"
        )
    from .ledger import record

    record(backend, version, "export", result.get("carbon") or {})
    if output != "table":
        emit(result, output, [])
        return
    what = {
        "merged": f"adapter merged into {artifact.base_model}",
        "copied": "copied",
        "converted": "converted",
    }.get(str(result.get("how")), str(result.get("how")))
    size = figure(float(result.get("sizeBytes", 0)) / 1e6)
    files = result.get("files") or []
    made = next((f"{shown}/{f}" for f in files if f.endswith(".gguf")), shown)
    kind = "merged safetensors" if fmt == "merged" else f"GGUF ({fmt.removeprefix('gguf-')})"
    click.echo(f"exported {version} ({what}) to {made} as {kind}")
    click.echo(f"  {len(files)} files, {size} MB, {result.get('digest')}")
    for note in result.get("notes") or []:
        click.echo(f"  note: {note}")
    click.echo(f"  spent {spent(result.get('carbon') or {})}; recorded in {shown}/export.json")
    if fmt == "merged":
        click.echo(f'  load it: AutoModelForCausalLM.from_pretrained("{shown}")')
    else:
        click.echo(f'  load it: llama_cpp.Llama(model_path="{made}")')
