"""One evaluation: loss and perplexity on a held-out dataset, and sample generations.

The figures are the trainer's own: the same dataset reader and checks, the same chat template
and labels (loss on the completion/assistant tokens only), the same loss function
(:func:`model_garden.training.loop.evaluate`), so a version evaluated on its training eval
split gets its ``evalLoss`` back. The run is carbon-tracked like training; its result goes to
``result_path`` (``eval.json`` beside the artifact) and is printed as the last line of stdout.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from model_garden.api.contracts import Outcome, write_document
from model_garden.api.offline import (
    SAMPLE_CHARS,
    EvalConfig,
    EvalResult,
    EvalSample,
    program_main,
)
from model_garden.carbon.tracker import TrainingCarbonTracker
from model_garden.training.datasets import DatasetError, DatasetErrors, load_examples
from model_garden.training.tokenize import IGNORE_INDEX, resolve_template, tokenize_examples

EXIT_FAILED = 1
EXIT_BAD_INPUT = 3


def generate(model: Any, tokenizer: Any, template: str, prompt: str, max_new_tokens: int) -> str:
    """A greedy completion of ``prompt`` as a user turn of the model's chat template."""
    import torch

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
        chat_template=template,
    )
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = ids.to(model.device)  # the trainer's model may sit on a GPU
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    completion = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    return str(completion)[:SAMPLE_CHARS]


def evaluate(config: EvalConfig, result: EvalResult) -> None:
    """Fill ``result`` with the loss, perplexity and samples (raises on bad input)."""
    import torch

    from model_garden.export.load import load_model, load_tokenizer
    from model_garden.training.loop import evaluate as mean_loss

    report = load_examples(config.dataset_path, config.dataset_format)
    examples = report.examples[: config.max_examples] if config.max_examples else report.examples
    tokenizer = load_tokenizer(config.artifact)
    template, _ = resolve_template(tokenizer, config.chat_template)
    tokens = tokenize_examples(examples, tokenizer, config.max_seq_length, template)
    result.truncated, result.dropped = tokens.truncated, tokens.dropped
    if not tokens.input_ids:
        raise DatasetError(config.dataset_path, None, None, "no example to score after tokenizing")
    model = load_model(config.artifact)
    with torch.no_grad():
        loss = mean_loss(
            model,
            tokens.input_ids,
            tokens.labels,
            config.batch_size,
            int(tokenizer.pad_token_id),
            "cpu",
        )
    assert loss is not None
    result.loss = loss
    result.perplexity = math.exp(min(loss, 700.0))
    result.examples = len(tokens.input_ids)
    result.tokens = sum(sum(1 for t in lab[1:] if t != IGNORE_INDEX) for lab in tokens.labels)
    result.samples = [
        EvalSample(
            prompt=p, completion=generate(model, tokenizer, template, p, config.max_new_tokens)
        )
        for p in config.prompts
    ]


def run(config: EvalConfig) -> tuple[EvalResult, int]:
    started = time.monotonic()
    carbon = TrainingCarbonTracker(config.country, config.region, project="model-garden-eval")
    result = EvalResult(
        outcome=Outcome.FAILED,
        model_version=config.artifact.model_version,
        dataset=config.dataset_uri,
    )
    code = EXIT_FAILED
    try:
        carbon.start()
        evaluate(config, result)
        result.outcome, result.reason, code = Outcome.SUCCEEDED, "Evaluated", 0
    except (DatasetError, DatasetErrors) as exc:
        result.reason, result.message, code = "DatasetError", str(exc)[:1500], EXIT_BAD_INPUT
    except Exception as exc:  # the result says why, whatever failed
        result.reason, result.message = "EvalFailed", f"{type(exc).__name__}: {exc}"[:1500]
    result.carbon = carbon.stop()
    result.duration_seconds = round(time.monotonic() - started, 3)
    result.evaluated_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if result.outcome == Outcome.SUCCEEDED:
        write_document(result, config.result_path)
    return result, code


def main(argv: list[str] | None = None) -> int:
    return program_main("model_garden.evaluation", __doc__, EvalConfig, run, argv)
