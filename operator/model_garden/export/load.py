"""Load a ModelVersion's weights for the offline tasks (runtime only: torch inside functions).

An adapter is applied to its base reloaded in full precision, exactly as the trainer merges
(:func:`model_garden.training.merge.merge_adapter`); the tokenizer, with its chat template, is
the one saved with the artifact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from model_garden.api.contracts import HF_TOKEN_ENV
from model_garden.api.offline import VersionArtifact


def base_kwargs(artifact: VersionArtifact) -> dict[str, Any]:
    """``from_pretrained`` kwargs for the base: a hub id's revision and token, none for a folder."""
    base = artifact.base_model or ""
    if not base or Path(base).exists():
        return {}
    kwargs: dict[str, Any] = {}
    if artifact.base_model_revision:
        kwargs["revision"] = artifact.base_model_revision
    if os.environ.get(HF_TOKEN_ENV):
        kwargs["token"] = os.environ[HF_TOKEN_ENV]
    return kwargs


def load_tokenizer(artifact: VersionArtifact) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(artifact.path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(artifact: VersionArtifact) -> Any:
    """The version as one model on CPU in fp32: an adapter merged into its base in memory."""
    import torch
    from transformers import AutoModelForCausalLM

    if not artifact.adapter:
        return AutoModelForCausalLM.from_pretrained(artifact.path, dtype=torch.float32).eval()
    from peft import PeftModel

    if not artifact.base_model:
        raise ValueError(f"{artifact.model_version}: an adapter without a base model")
    base = AutoModelForCausalLM.from_pretrained(
        artifact.base_model, dtype=torch.float32, **base_kwargs(artifact)
    )
    return PeftModel.from_pretrained(base, artifact.path).merge_and_unload().eval()
