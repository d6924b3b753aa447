"""A finished training run's report with Kepler's CPU/DRAM figures in place of the estimate."""

from __future__ import annotations

import pytest

from model_garden.api import FineTuneJob
from model_garden.api.common import CarbonReport
from model_garden.carbon.kepler import PodEnergy
from model_garden.operator.finetunejob import FineTuneJobWorld, plan_finetunejob
from model_garden.operator.finetunejob.kepler import trainer_energy, with_kepler
from model_garden.operator.settings import OperatorSettings
from unit.operator.factories import NOW, SETTINGS, ftj, job, pod, result

RUNNING = {"conditions": [{"type": "Running", "status": "True", "reason": "Running"}]}
PACKAGE = "kepler:kepler_pod_cpu_joules_total{zone=package}"
DRAM = "kepler:kepler_pod_cpu_joules_total{zone=dram}"


def report() -> CarbonReport:
    return CarbonReport(
        energy_kwh=0.6,
        cpu_energy_kwh=0.1,
        gpu_energy_kwh=0.45,
        ram_energy_kwh=0.05,
        emissions_kg=0.03,
        grid_intensity_g_per_kwh=50.0,
        country="FRA",
        method="estimated",
        component_methods={"cpu": "estimated", "gpu": "measured", "ram": "estimated"},
        component_sources={
            "cpu": "codecarbon cpu model (cpu_load)",
            "gpu": "nvml (zeus 0.16.0)",
            "ram": "codecarbon ram model",
        },
    )


def test_kepler_replaces_cpu_and_ram_and_emissions_follow_at_the_reports_intensity() -> None:
    out = with_kepler(
        report(), {"cpu": 720_000.0, "ram": 36_000.0}, sources={"cpu": PACKAGE, "ram": DRAM}
    )
    assert out.cpu_energy_kwh == pytest.approx(0.2) and out.ram_energy_kwh == pytest.approx(0.01)
    assert out.gpu_energy_kwh == 0.45  # the trainer's own GPU figure stays
    assert out.energy_kwh == pytest.approx(0.66)
    assert out.emissions_kg == pytest.approx(0.66 * 50 / 1000)
    assert out.method == "measured"  # every component is measured now
    assert out.component_methods == {"cpu": "measured", "gpu": "measured", "ram": "measured"}
    assert out.component_sources == {"cpu": PACKAGE, "gpu": "nvml (zeus 0.16.0)", "ram": DRAM}
    assert out.country == "FRA" and out.grid_intensity_g_per_kwh == 50.0


def test_a_component_kepler_lacks_stays_estimated() -> None:
    out = with_kepler(report(), {"cpu": 360_000.0}, intensity=100.0)
    assert out.ram_energy_kwh == 0.05 and out.component_methods["ram"] == "estimated"
    assert out.component_sources["cpu"] == "kepler" and out.method == "estimated"
    assert out.emissions_kg == pytest.approx((0.1 + 0.45 + 0.05) * 100 / 1000)


@pytest.mark.parametrize(
    ("joules", "message"),
    [({"gpu": 1.0}, "component 'gpu': expected cpu or ram"), ({"ram": -1.0}, "negative")],
)
def test_kepler_figures_that_cannot_be_are_refused(joules: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        with_kepler(report(), joules)


def test_the_finished_job_records_keplers_figures_in_status_and_model_version() -> None:
    trained = result(carbon=report().to_wire())
    world = FineTuneJobWorld(
        job=job(finished="Complete"),
        pods=[pod("Succeeded", exit_code=0, message=trained.to_termination_message())],
        kepler_energy=PodEnergy({"cpu": 720_000.0, "ram": 36_000.0}, {"cpu": PACKAGE, "ram": DRAM}),
    )
    plan = plan_finetunejob(ftj(status=RUNNING), world, SETTINGS, NOW)
    assert plan.status is not None
    carbon = plan.status["carbon"]
    assert carbon["cpuEnergyKwh"] == pytest.approx(0.2)
    assert carbon["componentSources"]["cpu"] == PACKAGE
    assert carbon["componentMethods"] == {"cpu": "measured", "gpu": "measured", "ram": "measured"}
    (version,) = plan.create
    assert version["spec"]["trainingCarbon"]["energyKwh"] == "0.66"
    assert version["spec"]["trainingCarbon"]["method"] == "measured"


def test_without_kepler_the_trainers_figures_stand() -> None:
    trained = result(carbon=report().to_wire())
    world = FineTuneJobWorld(
        job=job(finished="Complete"),
        pods=[pod("Succeeded", exit_code=0, message=trained.to_termination_message())],
    )
    plan = plan_finetunejob(ftj(status=RUNNING), world, SETTINGS, NOW)
    assert plan.status is not None
    assert plan.status["carbon"]["componentSources"]["cpu"] == "codecarbon cpu model (cpu_load)"


def test_the_operator_asks_kepler_only_for_a_finished_job_when_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    parsed = FineTuneJob.model_validate(ftj(status=RUNNING))
    assert trainer_energy(SETTINGS, parsed, job(finished="Complete"), NOW) is None  # no URL
    down = OperatorSettings(
        carbon_kepler_prometheus_url="http://127.0.0.1:9", carbon_kepler_timeout_seconds=2
    )
    assert trainer_energy(down, parsed, job(), NOW) is None  # running: not asked
    assert not caplog.records
    # finished, Prometheus down: the trainer's figures stay, with a warning that says why
    assert trainer_energy(down, parsed, job(finished="Complete"), NOW) is None
    (warning,) = caplog.records
    assert warning.levelname == "WARNING"
    assert "team/tune: keeping the trainer's CPU/RAM figures" in warning.getMessage()
    assert "did not answer" in warning.getMessage()


def test_a_failed_run_records_keplers_figures_too() -> None:
    trained = result(outcome="Failed", reason="Error", carbon=report().to_wire())
    world = FineTuneJobWorld(
        job=job(finished="Failed"),
        pods=[pod("Failed", exit_code=1, message=trained.to_termination_message())],
        kepler_energy=PodEnergy({"cpu": 720_000.0}, {"cpu": PACKAGE}),
    )
    plan = plan_finetunejob(ftj(status=RUNNING), world, SETTINGS, NOW)
    assert plan.status is not None
    assert plan.status["carbon"]["cpuEnergyKwh"] == pytest.approx(0.2)
    assert plan.status["carbon"]["componentSources"]["cpu"] == PACKAGE
