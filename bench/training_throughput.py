"""Training throughput on CPU: our trainer's path vs a plain transformers Trainer + PEFT, and trl.

    eval "$(bash scripts/build-cpu-runtime.sh)"
    python bench/training_throughput.py [--steps 20] [--hidden 256] [--layers 4] [--vocab 32000]

One invocation runs three contenders, each in its own process (so peak memory is its own), on
the same Llama built from config, the same LoRA settings, the same varied-length completion-only
data, batch size and number of optimizer steps:

* ``baseline``: ``transformers.Trainer`` + PEFT with the default padding collator for labelled
  data (``DataCollatorForSeq2Seq``: pads to the longest in each random batch);
* ``trl-packing``: trl ``SFTTrainer`` with ``packing=True`` (its default BFD, padding-free),
  a second reference;
* ``ours``: ``model_garden.training.loop`` (length-grouped batches, LM head only where a label
  is, fp32, no gradient checkpointing).

Every contender gets fp32 and no gradient checkpointing (TOOLCHAIN.md: bf16/checkpointing cost
~15x on this CPU) and the same thread count. Reported: real (non-pad) tokens per second over the
steps after ``--warmup``, the peak RSS while training (the kernel's high-water mark is reset just
before training, so imports and loading are excluded), and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

CONTENDERS = ("baseline", "trl-packing", "ours")


def varied_rows(count: int, seed: int) -> list[dict[str, str]]:
    """Alpaca rows whose lengths spread like chat data: many short, a long tail (≈30–600 tokens)."""
    from model_garden.demo.data import ANIMALS, COLOURS

    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        n = min(60, max(1, int(rng.lognormvariate(1.6, 0.9))))
        pets = [(rng.choice(COLOURS), rng.choice(ANIMALS)) for _ in range(n)]
        rows.append(
            {
                "instruction": "Describe the pets.",
                "input": ", ".join(f"a {c} {a}" for c, a in pets),
                "output": " ".join(f"The {a} is {c}." for c, a in pets),
            }
        )
    return rows


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def prepare(args: argparse.Namespace, work: Path) -> None:
    """Tokenizer, model (from config, random weights) and the tokenized dataset, shared."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from model_garden.demo.tiny_model import build_tokenizer
    from model_garden.training.datasets import Example, Message
    from model_garden.training.tokenize import resolve_template, tokenize_examples

    build_tokenizer(work)
    tok = AutoTokenizer.from_pretrained(work)
    torch.manual_seed(0)
    heads = max(1, args.hidden // 64)
    config = LlamaConfig(
        vocab_size=max(args.vocab, len(tok)),
        hidden_size=args.hidden,
        intermediate_size=int(args.hidden * 8 / 3) // 8 * 8,
        num_hidden_layers=args.layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=args.hidden // heads,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(work / "model")
    tok.save_pretrained(work / "model")
    # exactly one epoch in the timed run: every contender meets every example, the longest
    # included, so peak memory compares like with like
    rows = varied_rows(args.batch * args.steps, seed=1)
    examples = [
        Example(
            i + 1,
            messages=(
                Message("user", f"{r['instruction']}\n\n{r['input']}"),
                Message("assistant", r["output"]),
            ),
        )
        for i, r in enumerate(rows)
    ]
    template, _ = resolve_template(tok, None)
    data = tokenize_examples(examples, tok, args.max_len, template)
    (work / "data.json").write_text(
        json.dumps({"input_ids": data.input_ids, "labels": data.labels}), encoding="utf-8"
    )


def lora_model(work: Path) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(work / "model", dtype="float32")
    model.config.use_cache = False
    cfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear")
    return get_peft_model(model, cfg)


class StepClock:
    """Per-step wall times and real tokens (tokens are counted by the collator / the loop)."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.tokens: list[int] = []

    def summary(self, warmup: int) -> dict[str, float]:
        # marks[i] = end of step i (marks[-1] = start); tokens[i] = real tokens of step i
        steps = len(self.marks) - 1
        t = self.marks[steps] - self.marks[warmup]
        tokens = sum(self.tokens[warmup:steps])
        return {
            "steps_timed": steps - warmup,
            "seconds": t,
            "tokens": tokens,
            "tokens_per_s": tokens / t,
        }


def contender(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = json.loads((work / "data.json").read_text(encoding="utf-8"))
    ids: list[list[int]] = data["input_ids"]
    labels: list[list[int]] = data["labels"]
    clock = StepClock()
    model = lora_model(work)
    pad_id = int(model.config.pad_token_id)

    if name == "ours":
        from transformers import get_scheduler

        from model_garden.training.loop import LoopState, train

        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
        scheduler = get_scheduler("constant", optimizer)

        def on_step(state: Any, loss: float, lr: float, tokens: int, epoch: float) -> None:
            clock.marks.append(time.perf_counter())
            clock.tokens.append(tokens)

        reset_peak()
        base_rss = rss_kb("VmRSS")
        clock.marks.append(time.perf_counter())
        train(
            model,
            ids,
            labels,
            batch_size=args.batch,
            accumulation=1,
            seed=0,
            group_by_length=True,
            total_steps=args.steps,
            steps_per_epoch=len(ids) // args.batch,
            optimizer=optimizer,
            scheduler=scheduler,
            pad_id=pad_id,
            device="cpu",
            state=LoopState(),
            on_step=on_step,
            should_stop=lambda: None,
        )
    else:
        from datasets import Dataset
        from transformers import DataCollatorForSeq2Seq, TrainerCallback

        class Clock(TrainerCallback):  # type: ignore[misc]
            def on_train_begin(self, *a: Any, **k: Any) -> None:
                clock.marks.append(time.perf_counter())

            def on_step_end(self, *a: Any, **k: Any) -> None:
                clock.marks.append(time.perf_counter())

        def counting(inner: Any) -> Any:
            def collate(features: list[dict[str, Any]]) -> Any:
                batch = inner(features)
                mask = batch.get("attention_mask")
                real = int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
                clock.tokens.append(real)
                return batch

            return collate

        common = {
            "output_dir": str(work / f"out-{name}"),
            "per_device_train_batch_size": args.batch,
            "max_steps": args.steps,
            "learning_rate": 2e-4,
            "lr_scheduler_type": "constant",
            "bf16": False,
            "fp16": False,
            "gradient_checkpointing": False,
            "use_cpu": True,
            "report_to": [],
            "save_strategy": "no",
            "logging_strategy": "no",
            "dataloader_num_workers": 0,
            "seed": 0,
        }
        if name == "baseline":
            from transformers import Trainer, TrainingArguments

            ds = Dataset.from_dict({"input_ids": ids, "labels": labels})
            collator = DataCollatorForSeq2Seq(tokenizer=None, padding=True, label_pad_token_id=-100)
            collator.tokenizer = _PadOnly(pad_id)
            trainer = Trainer(
                model=model,
                args=TrainingArguments(**common, remove_unused_columns=False),
                train_dataset=ds,
                data_collator=counting(collator),
                callbacks=[Clock()],
            )
        else:
            from transformers import AutoTokenizer
            from trl import SFTConfig, SFTTrainer

            tok = AutoTokenizer.from_pretrained(work / "model")
            # completion-only loss as the others: trl takes a completion mask beside the ids
            masks = [[0 if t == -100 else 1 for t in lab] for lab in labels]
            ds = Dataset.from_dict({"input_ids": ids, "completion_mask": masks})

            class CpuSFTTrainer(SFTTrainer):  # type: ignore[misc]
                """trl 1.15's loss runs a Triton kernel (fused LM head) that has no CPU driver;
                keep trl's packing and collator, take transformers' standard loss."""

                def compute_loss(
                    self,
                    model: Any,
                    inputs: Any,
                    return_outputs: bool = False,
                    num_items_in_batch: Any = None,
                ) -> Any:
                    from transformers import Trainer

                    return Trainer.compute_loss(
                        self, model, inputs, return_outputs, num_items_in_batch
                    )

            trainer = CpuSFTTrainer(
                model=model,
                args=SFTConfig(
                    **common, packing=True, max_length=args.max_len, completion_only_loss=True
                ),
                train_dataset=ds,
                processing_class=tok,
                callbacks=[Clock()],
            )
            trainer.data_collator = counting(trainer.data_collator)
        reset_peak()
        base_rss = rss_kb("VmRSS")
        trainer.train()
    peak = rss_kb("VmHWM")
    return {
        "contender": name,
        **clock.summary(args.warmup),
        "peak_rss_mb": peak / 1024,
        "training_rss_growth_mb": (peak - base_rss) / 1024,
    }


class _PadOnly:
    """The padding half of a tokenizer, for DataCollatorForSeq2Seq on pre-tokenized data."""

    padding_side = "right"
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, pad_id: int) -> None:
        self.pad_token_id = pad_id

    def pad(self, features: list[dict[str, Any]], return_tensors: str = "pt", **_: Any) -> Any:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), longest), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        out: dict[str, Any] = {}
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            mask[i, :n] = 1
        out["input_ids"], out["attention_mask"] = ids, mask
        if "labels" in features[0]:
            out["labels"] = torch.tensor([f["labels"] for f in features])
        return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument(
        "--vocab", type=int, default=32000, help="model vocabulary (Llama 2: 32000)"
    )
    parser.add_argument("--max-len", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help="comma-separated subset to run"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run the contenders N times, interleaved; keep each one's best",
    )
    parser.add_argument("--only", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print("RESULT " + json.dumps(contender(args.only, args, Path(args.work))), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="mg-bench-") as tmp:
        work = Path(tmp)
        prepare(args, work)
        lengths = [len(x) for x in json.loads((work / "data.json").read_text())["input_ids"]]
        print(
            f"model: Llama hidden {args.hidden}, {args.layers} layers, vocab {args.vocab}; LoRA r16 "
            f"all-linear; batch {args.batch}, {args.steps} steps ({args.warmup} warm-up), "
            f"{args.threads} threads; {len(lengths)} examples, tokens min {min(lengths)} / mean "
            f"{sum(lengths) / len(lengths):.0f} / max {max(lengths)}",
            flush=True,
        )
        results: dict[str, Any] = {}
        passthrough = list(sys.argv[1:])
        chosen = [c for c in CONTENDERS if c in args.contenders.split(",")]
        for round_ in range(args.repeats):
            for name in chosen:
                proc = subprocess.run(
                    [sys.executable, __file__, *passthrough, "--only", name, "--work", str(work)],
                    capture_output=True,
                    text=True,
                )
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:
                    print(f"{name} failed:\n{proc.stderr[-3000:]}", flush=True)
                    continue
                r = json.loads(line[len("RESULT ") :])
                print(
                    f"[{round_ + 1}] {name:12s} {r['tokens_per_s']:9.1f} real tokens/s  peak RSS "
                    f"{r['peak_rss_mb']:7.0f} MB  (+{r['training_rss_growth_mb']:.0f} MB while "
                    f"training)  [{r['tokens']} tokens in {r['seconds']:.1f} s]",
                    flush=True,
                )
                best = results.get(name)
                if best is None or r["tokens_per_s"] > best["tokens_per_s"]:
                    results[name] = {
                        **r,
                        "peak_rss_mb": min(r["peak_rss_mb"], best["peak_rss_mb"])
                        if best
                        else r["peak_rss_mb"],
                    }
        base = results.get("baseline")
        if base:
            print("best of each (peak RSS: lowest seen):")
            for name, r in results.items():
                print(
                    f"ratio {name:12s} tokens/s x{r['tokens_per_s'] / base['tokens_per_s']:.2f}  "
                    f"peak RSS x{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}  training growth "
                    f"x{r['training_rss_growth_mb'] / max(base['training_rss_growth_mb'], 1e-9):.2f}"
                )
        print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
