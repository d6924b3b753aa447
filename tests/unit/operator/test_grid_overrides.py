"""The cluster's grid overrides (the chart's carbon.gridOverrides → the operator's settings)
reach every program that turns energy into emissions: the trainer through its TrainingConfig,
the serving meter through its command line; each figure then says `override:<key>`."""

from __future__ import annotations

from pathlib import Path

from model_garden.api import FineTuneJob, InferenceDeployment
from model_garden.carbon.tracker import EnergySplit, build_report
from model_garden.operator.finetunejob.objects import build_training_config
from model_garden.operator.inferencedeployment.objects import build_serving_config
from model_garden.operator.storage import Mounts
from model_garden.serving.launcher import meter_command

from .factories import SETTINGS, ftj, idep, mvt

OVERRIDES = {"aws:eu-west-3": 21.0, "DEU": 300.0}
CLUSTER = SETTINGS.model_copy(update={"grid_overrides": OVERRIDES})


def test_the_trainer_is_given_the_overrides_and_its_report_uses_them() -> None:
    body = ftj()
    body["spec"]["carbon"] = {"region": "aws:eu-west-3"}
    config = build_training_config(FineTuneJob.model_validate(body), 1, CLUSTER, Mounts())
    assert config.runtime.grid_overrides == OVERRIDES
    report = build_report(
        EnergySplit(cpu_kwh=2.0), config.runtime.country, "aws:eu-west-3", {},
        config.runtime.grid_overrides,
    )  # fmt: skip
    assert (report.grid_intensity_g_per_kwh, report.grid_source) == (21.0, "override:aws:eu-west-3")
    assert report.emissions_kg == 2.0 * 21.0 / 1000


def test_the_meter_is_given_the_overrides_on_its_command_line() -> None:
    served = InferenceDeployment.model_validate(idep("bot", modelVersion="chat-v1"))
    config, _, _ = build_serving_config(served, mvt("chat-v1"), [mvt("chat-v1")], CLUSTER, Mounts())
    assert config.grid_overrides == OVERRIDES
    argv = meter_command(config, Path("/tmp/state.json"), 1, 5.0, "python")
    assert argv[argv.index("--grid-overrides") + 1] == '{"aws:eu-west-3": 21.0, "DEU": 300.0}'
    plain, _, _ = build_serving_config(served, mvt("chat-v1"), [mvt("chat-v1")], SETTINGS, Mounts())
    assert "--grid-overrides" not in meter_command(plain, Path("/s"), 1, 5.0, "python")
