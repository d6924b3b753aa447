"""The pure parts of sharded full fine-tuning: which strategy a run gets, each process's
micro-batches padded to an equal count (under FSDP every forward is a collective), and the
optimizer state renamed so a checkpoint loads across strategies. FSDP itself
runs for real in tests/ml/test_fsdp_training.py (two processes, gloo)."""

from __future__ import annotations

import pytest

from model_garden.api.contracts import Outcome, TrainingResult
from model_garden.training.batching import step_batches
from model_garden.training.distributed import SINGLE, World, padded_shard, rank0_says, shard
from model_garden.training.fsdp import (
    FSDP,
    REPLICATED,
    keyed_by_name,
    named_optimizer_state,
    parallelism,
)
from model_garden.training.fsdp import SINGLE as ONE_PROCESS


@pytest.mark.parametrize(
    ("method", "processes", "expected"),
    [
        ("full", 2, FSDP),
        ("full", 8, FSDP),
        ("lora", 2, REPLICATED),  # adapters are tiny: replicas, see fsdp.py
        ("qlora", 4, REPLICATED),
        ("full", 1, ONE_PROCESS),
        ("lora", 1, ONE_PROCESS),
    ],
)
def test_full_fine_tuning_on_several_processes_is_sharded(
    method: str, processes: int, expected: str
) -> None:
    assert parallelism(method, processes) == expected


def test_no_processes_is_an_error_naming_the_count() -> None:
    with pytest.raises(ValueError, match="processes must be at least 1, got 0"):
        parallelism("full", 0)


def test_every_process_runs_as_many_micro_batches_and_padding_weighs_nothing() -> None:
    lengths = [5, 9, 3, 7, 11, 2, 8]
    for size in (1, 2, 3, 4):
        for step in step_batches(lengths, 2, 3, 0, True, 0):
            shares = [padded_shard(step, World(rank=r, size=size)) for r in range(size)]
            assert len({len(s) for s in shares}) == 1, shares  # lockstep forwards
            real = [b for s in shares for b, w in s if w == 1.0]
            assert sorted(map(sorted, real)) == sorted(map(sorted, step))  # each once
            for rank, share in enumerate(shares):
                weighted = [b for b, w in share if w == 1.0]
                assert weighted == shard(step, World(rank=rank, size=size))
                assert all(w in (0.0, 1.0) for _, w in share)


def test_a_process_without_a_micro_batch_runs_a_zero_weighted_one() -> None:
    step = [[0, 1], [2, 3], [4]]
    assert padded_shard(step, World(rank=0, size=2)) == [([0, 1], 1.0), ([4], 1.0)]
    assert padded_shard(step, World(rank=1, size=2)) == [([2, 3], 1.0), ([0, 1], 0.0)]
    assert padded_shard(step, World(rank=3, size=4)) == [([0, 1], 0.0)]
    assert padded_shard([], World(rank=0, size=2)) == []


def test_one_process_decides_alone() -> None:
    assert rank0_says(SINGLE, True) is True
    assert rank0_says(SINGLE, False) is False


def test_the_result_says_which_strategy_ran() -> None:
    result = TrainingResult(outcome=Outcome.SUCCEEDED, parallelism=FSDP)
    assert '"parallelism":"fsdp"' in result.to_termination_message()
    assert TrainingResult(outcome=Outcome.FAILED).parallelism is None


def test_a_numbered_optimizer_state_is_renamed_for_a_sharded_resume() -> None:
    numbered = {
        "state": {0: {"step": 3}, 2: {"step": 3}},
        "param_groups": [{"lr": 0.1, "params": [0, 1, 2]}],
    }
    named = named_optimizer_state(numbered, ["embed.weight", "norm.weight", "head.weight"])
    assert named == {
        "state": {"embed.weight": {"step": 3}, "head.weight": {"step": 3}},
        "param_groups": [{"lr": 0.1, "params": ["embed.weight", "norm.weight", "head.weight"]}],
    }
    assert keyed_by_name(named) and not keyed_by_name(numbered)


def test_an_optimizer_state_for_another_model_is_an_error_naming_the_index() -> None:
    numbered = {"state": {}, "param_groups": [{"params": [0, 5]}]}
    with pytest.raises(ValueError, match="names parameter 5; the model has 2"):
        named_optimizer_state(numbered, ["a", "b"])
