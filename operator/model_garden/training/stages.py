"""The trainer's stages before the loop: output dir, dataset, carbon, backend, tokens, model.

Their order is the contract: nothing is written before the output directory is claimed, and
no model weight is loaded before the dataset is checked (a bad line fails in seconds, not after
a multi-GB download). Heavy libraries (torch, transformers) are imported inside the stages
that need them, so the early refusals run without them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_garden.api.common import decimal_value
from model_garden.api.contracts import TrainingState
from model_garden.carbon.tracker import TrainingCarbonTracker

from . import ownership
from .backends import (
    BackendUnavailable,
    LoadedModel,
    _adapter_base,
    describe_weights,
    import_unsloth,
    load,
    probe_unsloth,
    resolve_base,
    select_backend,
    unsloth_installed,
)
from .batching import steps_per_epoch, total_steps
from .datasets import DatasetError, DatasetReport, load_examples, split_eval
from .exits import EXIT_FAILED
from .fsdp import FSDP, SINGLE, local_parameter_bytes, parallelism, parameter_bytes, shard
from .loop import label_logits
from .session import Finished, RunContext, default_threads, log
from .tokenize import Tokenized, resolve_template, tokenize_examples

HISTORY_FILE = "history.jsonl"
"""Beside the outputs: the trainer's per-step history (progress.ProgressTracker writes it)."""


@dataclass
class Tokens:
    """The tokenizer (chat template set: it is saved with every artifact) and both splits."""

    tokenizer: Any
    train: Tokenized
    eval: Tokenized
    source: str
    """Where the base came from: a hub id, a directory, or an adapter artifact."""
    is_adapter: bool

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


@dataclass
class Model:
    """The loaded model with what steps it: optimizer, schedule, and the step counts."""

    loaded: LoadedModel
    optimizer: Any
    scheduler: Any
    total: int
    steps_per_epoch: int
    parallelism: str = SINGLE
    """How the processes split the model (fsdp.py): ``fsdp``, ``replicated`` or ``single``."""

    @property
    def sharded(self) -> bool:
        return self.parallelism == FSDP


def claim_output(ctx: RunContext) -> None:
    """The output directory, before anything is written: ours (marked with the job's uid), or
    refused untouched (``OutputNotOurs``), since a later stage replaces what it holds. Under
    torchrun only rank 0 claims it (and writes into it)."""
    if not ctx.world.main:
        return
    ctx.result_dir = ownership.claim(Path(ctx.config.runtime.output_dir), ctx.owner)
    ctx.tracker.history = ctx.result_dir / HISTORY_FILE


def check_dataset(ctx: RunContext) -> DatasetReport:
    """Parse and validate every row before any weight is loaded: a dataset error costs
    seconds, and it names the file, line and field."""
    ctx.tracker.set_state(TrainingState.LOADING)
    spec, rt = ctx.config.spec, ctx.config.runtime
    report = load_examples(rt.dataset_path, str(spec.dataset.format))
    for line in report.lines():
        log(line)
    return report


def start_carbon(ctx: RunContext) -> TrainingCarbonTracker:
    """Meter all that follows, model load included. The spec's country/region win over the
    runtime's; earlier attempts' energy is added once the checkpoint is read. Under torchrun
    rank 0 alone meters: CodeCarbon reads the whole node's counters, every GPU included, so a
    meter per process would count the node once per process (the others' stays unstarted)."""
    spec, rt = ctx.config.spec, ctx.config.runtime
    carbon = TrainingCarbonTracker(
        spec.carbon.country or rt.country,
        spec.carbon.region or rt.region,
        grid_overrides=rt.grid_overrides,
    )
    if not ctx.world.main:
        return carbon
    ctx.carbon = carbon  # set first: a run whose meter fails to start still reports one
    carbon.start()
    return carbon


def choose_backend(ctx: RunContext) -> tuple[str, str]:
    """The backend and why (for the log): ``auto`` falls back from an Unsloth that cannot
    run here; an explicit ``unsloth`` that cannot run ends the run (``BackendUnavailable``).
    Sets torch's threads first: a pod gets its cpuset, not the node's CPUs."""
    import torch

    ctx.threads = ctx.config.runtime.threads or max(1, default_threads() // ctx.world.local_size)
    torch.set_num_threads(ctx.threads)
    requested = str(ctx.config.spec.backend)
    try:
        backend, why = select_backend(
            requested, torch.cuda.is_available(), unsloth_installed(), ctx.world.size
        )
    except BackendUnavailable as exc:
        raise Finished(ctx.failed("BackendUnavailable", str(exc)), EXIT_FAILED) from exc
    if backend == "unsloth":
        ctx.base.backend = backend
        problem = probe_unsloth()
        if problem and requested == "auto":
            backend, why = "transformers", f"auto: Unsloth unusable here ({problem})"
        elif problem:
            msg = f"backend unsloth was requested but {problem}; use backend transformers"
            raise Finished(ctx.failed("BackendUnavailable", msg), EXIT_FAILED)
        else:
            import_unsloth()
    ctx.base.backend = backend
    return backend, why


def tokenize_dataset(ctx: RunContext, report: DatasetReport) -> Tokens:
    """The tokenizer and its chat template, the eval split, and labels on the tokens that
    carry loss; a dataset with nothing left to train on after truncation is a dataset error."""
    from transformers import AutoTokenizer

    spec, rt = ctx.config.spec, ctx.config.runtime
    source, kwargs, is_adapter = resolve_base(ctx.config)
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    template, template_source = resolve_template(tokenizer, spec.dataset.chat_template)
    tokenizer.chat_template = template  # saved with every artifact
    seed = spec.hyperparameters.seed
    train_idx, eval_idx = split_eval(
        len(report.examples), decimal_value(spec.dataset.eval_split), seed
    )

    def split(indices: list[int]) -> Tokenized:
        return tokenize_examples(
            [report.examples[i] for i in indices],
            tokenizer,
            spec.dataset.max_seq_length,
            template,
            spec.dataset.completion_only_loss,
        )

    tok_train, tok_eval = split(train_idx), split(eval_idx)
    log(
        "tokenized",
        template=template_source,
        train=tok_train.stats(),
        eval=tok_eval.stats(),
        truncated_lines=tok_train.truncated_lines,
    )
    if not tok_train.input_ids:
        raise DatasetError(rt.dataset_path, None, None, "no trainable example after tokenizing")
    return Tokens(tokenizer, tok_train, tok_eval, source, is_adapter)


def load_model(ctx: RunContext, tokens: Tokens, backend: str, why: str) -> Model:
    """The model on its backend, then the optimizer and LR schedule over the run's total
    steps (a resumed run restores their state from the checkpoint next)."""
    import torch
    from transformers import get_scheduler

    hp = ctx.config.spec.hyperparameters
    loaded = load(ctx.config, backend, why)
    ctx.base.base_model = _adapter_base(tokens.source) if tokens.is_adapter else loaded.base_model
    log(
        "model",
        backend=backend,
        why=why,
        device=loaded.device,
        dtype=loaded.dtype,
        threads=ctx.threads,
        weights=describe_weights(loaded.model),
    )
    # one optimizer step spans every process's micro-batches (distributed.py)
    n_train = len(tokens.train.input_ids)
    accumulation = hp.gradient_accumulation_steps * ctx.world.size
    spe = steps_per_epoch(n_train, hp.batch_size, accumulation)
    total = total_steps(n_train, hp.batch_size, accumulation, hp.epochs, hp.max_steps)
    strategy = parallelism(str(ctx.config.spec.method.type), ctx.world.size)
    ctx.base.parallelism = strategy
    if strategy == FSDP:  # before the optimizer: sharding replaces the parameters
        full_bytes = parameter_bytes(loaded.model)
        shard(loaded.model, label_logits)
        log(
            "sharded",
            parallelism=strategy,
            processes=ctx.world.size,
            parameter_bytes=full_bytes,
            local_parameter_bytes=local_parameter_bytes(loaded.model),
        )
    params = [p for p in loaded.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=decimal_value(hp.learning_rate), weight_decay=decimal_value(hp.weight_decay)
    )
    scheduler = get_scheduler(
        str(hp.lr_scheduler),
        optimizer,
        num_warmup_steps=math.ceil(total * decimal_value(hp.warmup_ratio)),
        num_training_steps=total,
    )
    return Model(loaded, optimizer, scheduler, total, spe, strategy)
