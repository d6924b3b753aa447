"""Save a finished run's artifacts: weights (and the merge), tokenizer, model card, digests.

Order matters for the carbon figure: every weight is written first (the merge included), then
the run's carbon is taken once and for all (``final_carbon``), then each folder gets its model
card and its digest. So the card's ``co2_eq_emissions`` is the very figure of the
``TrainingResult``, merge included. Folders are replaced only inside an output directory this
job claimed (see ``ownership.py``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_garden.api.common import CarbonReport
from model_garden.api.contracts import (
    ArtifactFile,
    ArtifactKind,
    TrainingConfig,
    TrainingEvaluation,
    TrainingMetrics,
)
from model_garden.api.modelversion import version_name

from .evaluation import write_report
from .outputs import artifact, model_card


def hardware_name(device: str, threads: int) -> str:
    if device == "cuda":
        import torch

        return str(torch.cuda.get_device_name(0))
    return f"CPU ({threads} threads)"


def fresh(folder: Path) -> Path:
    """An empty ``folder`` (inside the claimed output directory): an old one is replaced."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


def save_weights(
    config: TrainingConfig,
    loaded: Any,
    tokenizer: Any,
    output_dir: Path,
    state_dict: dict[str, Any] | None = None,
) -> list[tuple[ArtifactKind, Path]]:
    """Write the weights and tokenizer of every artifact; the merge reloads the base at the
    revision training used. ``state_dict``: a sharded model's full weights (fsdp.py), written
    as the model's own class writes them."""
    spec = config.spec
    saved: list[tuple[ArtifactKind, Path]] = []

    def write(kind: ArtifactKind, folder: Path, save: Callable[[Path], Any]) -> Path:
        save(fresh(folder))
        tokenizer.save_pretrained(folder)
        saved.append((kind, folder))
        return folder

    def save_model(folder: Path) -> None:
        if state_dict is None:
            loaded.model.save_pretrained(folder, safe_serialization=True)
            return
        from .fsdp import plain_class

        loaded.model.save_pretrained(folder, safe_serialization=True, state_dict=state_dict)
        # config.json names the model's own class, not FSDP's subclass of it
        loaded.model.config.architectures = [plain_class(loaded.model).__name__]
        loaded.model.config.save_pretrained(folder)

    if str(spec.method.type) == "full":
        write(ArtifactKind.FULL, output_dir / "full", save_model)
        return saved
    adapter_dir = write(ArtifactKind.ADAPTER, output_dir / "adapter", save_model)
    if spec.output.merge:
        from .merge import base_load_kwargs, merge_adapter

        kwargs = base_load_kwargs(config, loaded.base_model)

        def merge(folder: Path) -> None:
            merge_adapter(loaded.base_model, adapter_dir, folder, loaded.device, kwargs)

        write(ArtifactKind.MERGED, output_dir / "merged", merge)
    return saved


def finalize(
    config: TrainingConfig,
    loaded: Any,
    saved: list[tuple[ArtifactKind, Path]],
    metrics: TrainingMetrics,
    carbon: CarbonReport,
    hardware: str,
    output_dir: Path,
    evaluation: TrainingEvaluation | None = None,
) -> list[ArtifactFile]:
    """Write each folder's model card (with the run's final carbon) and its eval.json, then
    take its digest (which so covers both)."""
    spec = config.spec
    name = spec.output.model or config.job.name
    out = []
    for kind, folder in saved:
        if evaluation is not None:
            label = version_name(name, config.model_version) if config.model_version else name
            write_report(evaluation, folder, label)
        card = model_card(
            name=spec.output.model or config.job.name,
            base_model=loaded.base_model,
            kind=kind,
            method=str(spec.method.type),
            backend=loaded.backend,
            dataset=spec.dataset.uri,
            metrics=metrics,
            carbon=carbon,
            hardware=hardware,
            evaluation=evaluation,
        )
        (folder / "README.md").write_text(card, encoding="utf-8")
        out.append(artifact(kind, folder, config.runtime.artifact_uri, output_dir))
    return out


def save_artifacts(
    config: TrainingConfig,
    loaded: Any,
    tokenizer: Any,
    metrics: TrainingMetrics,
    final_carbon: Callable[[], CarbonReport],
    hardware: str,
    output_dir: Path,
    evaluation: TrainingEvaluation | None = None,
    state_dict: dict[str, Any] | None = None,
) -> list[ArtifactFile]:
    """Weights, then the final carbon figure, then cards, eval.json and digests (see the
    module doc)."""
    saved = save_weights(config, loaded, tokenizer, output_dir, state_dict)
    return finalize(
        config, loaded, saved, metrics, final_carbon(), hardware, output_dir, evaluation
    )
