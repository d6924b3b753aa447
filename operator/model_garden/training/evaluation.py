"""spec.evaluation at the end of training: ``mg eval``'s figures, on the model still in memory.

The same reader, template, labels and loss as the trainer's eval (and as ``mg eval``): on the
job's own eval split the loss is the final eval loss already measured; on ``spec.evaluation.
dataset`` it is scored here. Greedy samples use ``mg eval``'s generation. The full report goes
to ``eval.json`` in each artifact folder (written before the digest, so the version's digest
covers it); the result keeps the figures and shortened samples (it must fit 4 KB).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model_garden.api.common import decimal_value
from model_garden.api.contracts import (
    EvaluationSample,
    Outcome,
    TrainingConfig,
    TrainingEvaluation,
    write_document,
)

from .datasets import load_examples
from .loop import evaluate
from .session import log
from .tokenize import IGNORE_INDEX, Tokenized, tokenize_examples


def loss_tokens(tokens: Tokenized) -> int:
    """Tokens that carry loss (labels are shifted by one, as in the loss)."""
    return sum(sum(1 for t in lab[1:] if t != IGNORE_INDEX) for lab in tokens.labels)


def run_evaluation(
    config: TrainingConfig,
    loaded: Any,
    tokenizer: Any,
    eval_split: Tokenized,
    eval_loss: float | None,
) -> TrainingEvaluation | None:
    """The end-of-training evaluation the spec asks for (None when it asks for none)."""
    from model_garden.evaluation.run import generate

    spec = config.spec
    settings = spec.evaluation
    if settings is None:
        return None
    if config.runtime.eval_dataset_path and settings.dataset:
        report = load_examples(config.runtime.eval_dataset_path, str(spec.dataset.format))
        scored = tokenize_examples(
            report.examples,
            tokenizer,
            spec.dataset.max_seq_length,
            tokenizer.chat_template,
            spec.dataset.completion_only_loss,
        )
        loss = evaluate(
            loaded.model,
            scored.input_ids,
            scored.labels,
            spec.hyperparameters.batch_size,
            int(tokenizer.pad_token_id),
            loaded.device,
        )
        dataset = str(settings.dataset)
    else:
        scored, loss = eval_split, eval_loss
        share = decimal_value(spec.dataset.eval_split)
        dataset = f"{spec.dataset.uri} (eval split {share:g})"
    was_training = loaded.model.training
    loaded.model.eval()
    try:
        samples = [
            EvaluationSample(
                prompt=p,
                completion=generate(
                    loaded.model, tokenizer, tokenizer.chat_template, p, settings.max_new_tokens
                ),
            )
            for p in settings.prompts
        ]
    finally:
        if was_training:
            loaded.model.train()
    result = TrainingEvaluation(
        dataset=dataset,
        loss=loss,
        perplexity=math.exp(min(loss, 700.0)) if loss is not None else None,
        examples=len(scored.input_ids),
        tokens=loss_tokens(scored),
        evaluated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        samples=samples,
    )
    log(
        "evaluation", dataset=dataset, loss=loss, perplexity=result.perplexity, samples=len(samples)
    )
    return result


def write_report(evaluation: TrainingEvaluation, folder: Path, model_version: str) -> None:
    """``eval.json`` in an artifact folder: ``mg eval``'s document, with the full samples."""
    from model_garden.api.offline import EVAL_RESULT_FILE, EvalResult, EvalSample

    doc = EvalResult(
        outcome=Outcome.SUCCEEDED,
        reason="Evaluated",
        message="evaluated at the end of training",
        model_version=model_version,
        dataset=evaluation.dataset,
        examples=evaluation.examples,
        tokens=evaluation.tokens,
        loss=evaluation.loss,
        perplexity=evaluation.perplexity,
        samples=[EvalSample(prompt=s.prompt, completion=s.completion) for s in evaluation.samples],
        evaluated_at=evaluation.evaluated_at,
    )
    write_document(doc, folder / EVAL_RESULT_FILE)
