"""Carbon recommendations in status (issue 13, item 6): a finished job and a serving
deployment carry the few biggest, rounded so a meter's every poll does not rewrite them."""

from __future__ import annotations

from model_garden.api import FineTuneJob, InferenceDeployment
from model_garden.operator.finetunejob.plan import recommendations as job_recommendations
from model_garden.operator.inferencedeployment.plan import (
    recommendations as deployment_recommendations,
)

from .factories import ftj, idep

CARBON = {"energyKwh": 3.0, "emissionsKg": 1.2345, "country": "DEU", "method": "estimated"}


def _job(method: str, base: str) -> FineTuneJob:
    body = ftj(status={"carbon": CARBON, "progress": {"step": 100, "totalSteps": 100}})
    body["spec"]["baseModel"] = {"hub": {"id": base}}
    body["spec"]["method"] = {"type": method}
    return FineTuneJob.model_validate(body)


def test_a_full_fine_tune_of_a_large_model_is_told_about_lora() -> None:
    (brief,) = job_recommendations(_job("full", "org/Llama-3.1-8B"))
    assert brief["rule"] == "parameter-efficient"
    assert brief["savingKg"] == 0.41, "a third of 1.2345 kg, to two significant digits"
    assert job_recommendations(_job("lora", "org/Llama-3.1-8B")) == []
    assert job_recommendations(_job("full", "org/SmolLM2-135M")) == []


def test_a_mostly_idle_deployment_is_told_to_scale_to_zero() -> None:
    typed = InferenceDeployment.model_validate(idep("bot", modelVersion="chat-v1", replicas=1))
    idle = {
        "energyKwh": 2.0,
        "idleEnergyKwh": 1.8,
        "emissionsKg": 0.8,
        "idleEmissionsKg": 0.72,
        "tokens": 5_000_000,
    }
    (brief,) = deployment_recommendations(typed, idle)
    assert brief["rule"] == "idle-deployment" and brief["savingKg"] == 0.72
    busy = {**idle, "idleEnergyKwh": 0.1, "idleEmissionsKg": 0.04, "tokens": 9_000_000}
    assert deployment_recommendations(typed, busy) == []
