"""The pure parts of multi-process training: the world from torchrun's environment, each rank's
share of a step, the stop agreement's codes, the backend under several processes, and the
launcher's exit code. The collectives themselves run for real in
tests/ml/test_distributed_training.py (two processes, gloo)."""

from __future__ import annotations

import pytest

from model_garden.training.backends import select_backend
from model_garden.training.batching import step_batches
from model_garden.training.distributed import (
    STOP_REASONS,
    World,
    decode_stop,
    encode_stop,
    shard,
    world_from_env,
)
from model_garden.training.launch import exit_code_of


def test_world_from_torchrun_env() -> None:
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    world = world_from_env(env)
    assert world == World(rank=3, size=8, local_rank=1, local_size=2)
    assert world.distributed and not world.main
    single = world_from_env({})
    assert single == World() and single.main and not single.distributed


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE"),
        ({"RANK": "-1", "WORLD_SIZE": "2"}, "RANK"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2"),
        ({"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "1"}, "LOCAL_RANK=1"),
    ],
)
def test_bad_world_env_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        world_from_env(env)


def test_ranks_split_each_step_without_overlap_or_loss() -> None:
    lengths = [5 + (i * 7) % 23 for i in range(29)]  # 8 micro-batches: steps of 6, then 2
    size, accumulation = 3, 2
    steps = step_batches(lengths, 4, accumulation * size, seed=1, group_by_length=True, epoch=0)
    for micro in steps:
        shares = [shard(micro, World(rank=r, size=size)) for r in range(size)]
        flat = [i for share in shares for b in share for i in b]
        assert sorted(flat) == sorted(i for b in micro for i in b)
        assert all(len(s) <= accumulation for s in shares)
    # the short last step leaves a rank with nothing: it still joins the sum with zeros
    assert shard(steps[-1], World(rank=2, size=3)) == []
    # one process: everything, in order
    assert shard(steps[0], World()) == steps[0]


def test_stop_codes_round_trip_and_the_budget_wins() -> None:
    for reason in STOP_REASONS:
        assert decode_stop(encode_stop(reason or None)) == (reason or None)
    # the agreement is a MAX: the budget (no retry) outranks a SIGTERM seen at the same step
    assert decode_stop(max(encode_stop("SIGTERM"), encode_stop("CarbonBudgetExceeded"))) == (
        "CarbonBudgetExceeded"
    )
    assert decode_stop(encode_stop("SomethingNew")) == "SIGTERM"


@pytest.mark.parametrize("requested", ["auto", "unsloth"])
def test_several_processes_train_with_transformers(requested: str) -> None:
    backend, why = select_backend(requested, cuda=True, unsloth_installed=True, processes=4)
    assert backend == "transformers"
    assert "Unsloth" in why and "4 processes" in why
    # one process: unchanged
    assert select_backend(requested, cuda=True, unsloth_installed=True)[0] == "unsloth"


@pytest.mark.parametrize(
    ("failures", "code"),
    [
        ({}, 0),
        ({0: 3}, 3),  # bad input on rank 0: the podFailurePolicy fails the Job at once
        ({1: 1, 0: 2}, 2),  # rank 0 wrote the result: its code
        ({3: 143, 2: 1}, 1),  # rank 0 fine: the lowest failed rank's
        ({0: -15}, 143),  # killed by SIGTERM: like a shell
        ({0: 0, 1: 1}, 1),
    ],
)
def test_launcher_keeps_the_trainers_exit_code(failures: dict[int, int], code: int) -> None:
    assert exit_code_of(failures) == code
