"""Kill a full fine-tuning run mid-way (SIGTERM, then SIGKILL) and resume it to the same end.

One chain of three trainer processes on one checkpoint folder:
1. SIGTERM after the first checkpoint: a checkpoint is written and the process exits 143
   within the stated bound, reporting ``Terminated``;
2. the rerun resumes from it and is SIGKILLed after a later checkpoint (mid-step, possibly
   mid-save); a half-written checkpoint and an unmarked one are then planted as well;
3. the third run ignores and removes those, resumes from the newest complete checkpoint and
   ends at exactly the configured step count.

All three share one run key, so one ``run-<key>`` folder. Apart from the chain: a run stopped by
its carbon budget resumes once the budget is raised (the key ignores ``spec.carbon``), a job
recreated by the same name (new uid) starts over, and checkpoint files that would run code when
unpickled are refused.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from harness.runtime import run_runtime
from ml.test_training_support import (
    result_of,
    run_folders,
    start_trainer,
    trainer_log,
    training_config,
    training_data,
    wait,
    wait_for_checkpoint,
)
from model_garden.training import checkpoints
from model_garden.training.run import EXIT_BAD_INPUT, EXIT_TERMINATED, SIGTERM_EXIT_BOUND_SECONDS

pytestmark = pytest.mark.ml

STEPS = 150
FULL_EVAL_LOSS_DROP = 0.20
"""Full fine-tuning's final eval loss is at least 20% below the untrained model's."""


@pytest.fixture(scope="module")
def chain(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("resume") / "full-resume"
    data = training_data(work.parent)
    cfg = training_config(
        work, tiny_model, data, method="full", steps=STEPS, lr="1e-3", every=10, keep=2
    )
    root = work / "checkpoints"
    out: dict[str, Any] = {"work": work}

    first = start_trainer(cfg)
    out["first_ckpt"] = wait_for_checkpoint(first, root, above=0)
    (folder,) = run_folders(root)
    signalled = time.monotonic()
    first.send_signal(signal.SIGTERM)
    out["term_code"] = wait(first, work, timeout=SIGTERM_EXIT_BOUND_SECONDS + 30)
    out["term_seconds"] = time.monotonic() - signalled
    out["term_result"] = result_of(work)
    out["after_term"] = checkpoints.latest_checkpoint(folder)

    second = start_trainer(cfg)
    out["killed_after"] = wait_for_checkpoint(second, root, above=int(out["after_term"].name[11:]))
    second.send_signal(signal.SIGKILL)
    second.wait(timeout=30)
    out["after_kill"] = checkpoints.latest_checkpoint(folder)
    # what a kill during a save leaves: a temp folder, and a final-named folder without marker
    half = folder / ".tmp-checkpoint-9990-1"
    half.mkdir()
    (half / "weights.safetensors").write_bytes(b"\0" * 100)
    fake = folder / "checkpoint-9999"
    fake.mkdir()
    (fake / "trainer_state.json").write_text('{"step": 9999}')

    third = start_trainer(cfg)
    out["final_code"] = wait(third, work)
    out["final"] = result_of(work)
    out["leftovers"] = sorted(p.name for p in folder.iterdir() if p.is_dir())
    out["run_folders"] = run_folders(root)
    out["log"] = trainer_log(work)
    return out


def test_sigterm_checkpoints_and_exits_within_the_bound(chain: dict[str, Any]) -> None:
    assert chain["term_code"] == EXIT_TERMINATED, chain["log"][-3000:]
    assert chain["term_seconds"] < SIGTERM_EXIT_BOUND_SECONDS
    result = chain["term_result"]
    assert result.outcome == "Failed" and result.reason == "Terminated"
    saved = int(chain["after_term"].name.split("-")[1])
    assert saved >= chain["first_ckpt"] and "checkpoint saved" in result.message


def test_rerun_after_sigkill_resumes_from_the_newest_complete_checkpoint(
    chain: dict[str, Any],
) -> None:
    final = chain["final"]
    assert chain["final_code"] == 0, chain["log"][-3000:]
    newest = int(chain["after_kill"].name.split("-")[1])
    assert newest >= chain["killed_after"] > int(chain["after_term"].name.split("-")[1])
    assert final.resumed_from_step == newest
    assert len(chain["run_folders"]) == 1  # one job, one run key: every attempt resumes it
    assert final.metrics.steps == STEPS and final.outcome == "Succeeded"
    assert "removed incomplete checkpoints" in chain["log"]


def test_no_partial_checkpoint_survives_and_keep_is_honoured(chain: dict[str, Any]) -> None:
    # every 10 steps, keep 2; the last step needs none (its artifacts are the output)
    assert chain["leftovers"] == [f"checkpoint-{STEPS - 20}", f"checkpoint-{STEPS - 10}"]


def test_full_fine_tuning_learns_across_restarts(chain: dict[str, Any]) -> None:
    m = chain["final"].metrics
    assert m.initial_eval_loss is not None and m.eval_loss is not None
    assert m.eval_loss <= (1 - FULL_EVAL_LOSS_DROP) * m.initial_eval_loss, m
    assert [a.kind for a in chain["final"].artifacts] == ["full"]
    # energy and tokens add up across the three processes
    assert chain["final"].carbon.energy_kwh > chain["term_result"].carbon.energy_kwh > 0


def test_raised_budget_resumes_and_a_recreated_job_starts_over(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = training_data(tmp_path, 80)
    work = tmp_path / "budget"
    root = work / "checkpoints"
    small = {"country": "FRA", "budgetKg": "1e-12"}
    cfg = training_config(work, tiny_model, data, steps=6, every=100, carbon=small)
    assert wait(start_trainer(cfg), work) == EXIT_BAD_INPUT  # a retry could not help
    stopped = result_of(work)
    assert stopped.reason == "CarbonBudgetExceeded", stopped.message
    step = stopped.metrics.steps
    assert step >= 1 and checkpoints.latest_checkpoint(run_folders(root)[0]) is not None

    raised = {"country": "FRA", "budgetKg": "1000"}
    cfg = training_config(work, tiny_model, data, steps=6, every=100, carbon=raised)
    assert wait(start_trainer(cfg), work) == 0, trainer_log(work)[-3000:]
    resumed = result_of(work)
    assert resumed.outcome == "Succeeded" and resumed.resumed_from_step == step
    assert resumed.metrics.steps == 6 and len(run_folders(root)) == 1

    # deleted and recreated by the same name: a new uid, the same checkpoint directory
    again = tmp_path / "recreated"
    cfg = training_config(
        again, tiny_model, data, steps=6, every=100, uid="u-2", checkpoint_dir=root, carbon=raised
    )
    assert wait(start_trainer(cfg), again) == 0, trainer_log(again)[-3000:]
    fresh = result_of(again)
    assert fresh.outcome == "Succeeded" and fresh.resumed_from_step is None
    assert fresh.metrics.steps == 6 and len(run_folders(root)) == 2


PLANTED_PICKLES = """
import json, os, shutil, sys
from pathlib import Path
import torch
from transformers import get_scheduler
from model_garden.training import checkpoints as ck

work = Path(sys.argv[1])
def parts():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return model, opt, get_scheduler("cosine", opt, num_warmup_steps=1, num_training_steps=10)
model, opt, sched = parts()
model(torch.ones(1, 4)).sum().backward(); opt.step(); sched.step()
saved = ck.save(work / "run", 1, model, opt, sched, {"tokens": 1}, True)
out = {"roundtrip": ck.load(saved, *parts(), True)["step"]}

class Evil:
    def __init__(self, marker):
        self.marker = marker
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))

# control: the planted file does run code when unpickled the old way
torch.save(Evil(work / "control-ran"), work / "control.pt")
torch.load(work / "control.pt", weights_only=False)
out["control_ran"] = (work / "control-ran").exists()
for name in ("rng.pt", "scheduler.pt", "optimizer.pt"):
    root = work / name
    shutil.copytree(saved.parent, root)
    path = ck.latest_checkpoint(root)
    torch.save({"state": Evil(work / f"ran-{name}")}, path / name)
    marker = json.loads((path / ck.MARKER).read_text())  # the attacker fixes the sizes too
    marker["files"][name] = (path / name).stat().st_size
    (path / ck.MARKER).write_text(json.dumps(marker))
    assert ck.latest_checkpoint(root) == path
    try:
        ck.load(path, *parts(), True)
        out[name] = "loaded"
    except ck.CheckpointRefused as exc:
        out[name] = str(exc)
    out[f"ran-{name}"] = (work / f"ran-{name}").exists()
print(json.dumps(out))
"""


def test_checkpoint_files_that_would_run_code_are_refused(tmp_path: Path) -> None:
    proc = run_runtime(["-c", PLANTED_PICKLES, str(tmp_path)])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["roundtrip"] == 1 and out["control_ran"], out
    for name in ("rng.pt", "scheduler.pt", "optimizer.pt"):
        assert not out[f"ran-{name}"], out
        assert "refused unread (weights_only)" in out[name] and name in out[name], out
