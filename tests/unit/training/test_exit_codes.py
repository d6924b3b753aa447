"""The trainer's exit code says whether a retry can help (issue 8; the Job's podFailurePolicy).

Bad input no retry fixes exits 3 and the Job's FailJob rule stops at once instead of running
the same failure ``backoffLimit`` times; the TrainingResult in the termination message still
says why, as for every other failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_garden.api.contracts import TrainingResult
from model_garden.training import checkpoints, ownership
from model_garden.training.outputs import failure
from model_garden.training.run import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INVALID_CONFIG,
    exit_code,
    main,
)

from .trainer_runs import run_in_process, scratch_config


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("DatasetError", EXIT_BAD_INPUT),
        (ownership.REASON, EXIT_BAD_INPUT),
        (checkpoints.REFUSED, EXIT_BAD_INPUT),
        ("TrainingError", EXIT_FAILED),
        ("BackendUnavailable", EXIT_FAILED),
        ("CarbonBudgetExceeded", EXIT_BAD_INPUT),
    ],
)
def test_reasons_no_retry_fixes_exit_with_the_bad_input_code(reason: str, code: int) -> None:
    assert exit_code(failure(reason, "x")) == code


def test_codes_are_distinct() -> None:
    assert len({EXIT_FAILED, EXIT_INVALID_CONFIG, EXIT_BAD_INPUT, 0, 143}) == 5


def test_a_dataset_that_does_not_parse_exits_3_with_its_result(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("{not json\n")
    config = scratch_config(tmp_path, dataset=data, output=tmp_path / "out", uid="u-1")
    term = Path(config.runtime.termination_message_path)
    result, code = run_in_process(config)
    assert code == EXIT_BAD_INPUT == 3
    assert result.reason == "DatasetError"
    assert TrainingResult.model_validate_json(term.read_text()).reason == "DatasetError"


def test_an_unreadable_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{}")
    assert main(["--config", str(bad)]) == EXIT_INVALID_CONFIG == 2
