"""The recommendation rules as tables: each fires when it should, stays silent when it should not,
and computes its saving exactly on recorded numbers (binary-exact figures, so ``==`` holds)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from model_garden.carbon.recommend import (
    DEFAULTS,
    DeploymentFacts,
    EvalPoint,
    ForecastPoint,
    JobFacts,
    Thresholds,
    early_stopping,
    evaluate,
    idle_deployment,
    lower_intensity_region,
    lower_intensity_window,
    parameter_efficient,
    parameters_from_name,
    plateau_step,
    right_size_gpus,
)
from model_garden.carbon.recommend.model import (
    DEPLOYMENT,
    EARLY_STOPPING,
    IDLE_DEPLOYMENT,
    JOB,
    LOWER_INTENSITY_REGION,
    LOWER_INTENSITY_WINDOW,
    PARAMETER_EFFICIENT,
    RIGHT_SIZE_GPUS,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
JOB_FACTS = JobFacts(
    name="tune",
    namespace="team",
    method="full",
    base_model="meta-llama/Llama-3.1-8B",
    parameters=8_000_000_000,
    energy_kwh=2.0,
    gpu_energy_kwh=1.5,
    emissions_kg=0.5,
    intensity_g_per_kwh=250.0,
    region="DEU",
    steps=400,
    duration_seconds=7200.0,
    gpus=4,
)
DEP_FACTS = DeploymentFacts(
    name="bot",
    namespace="team",
    energy_kwh=2.0,
    idle_energy_kwh=0.5,
    idle_emissions_kg=0.0,
    emissions_kg=0.4,
    tokens=1_000_000,
    intensity_g_per_kwh=200.0,
    region="DEU",
    replicas=2,
    gpus=2,
)


# --- parameter-efficient (LoRA/QLoRA instead of full) -------------------------------------------


@pytest.mark.parametrize(
    ("change", "fires"),
    [
        ({}, True),
        ({"parameters": 1_000_000_000}, True),  # the threshold itself is large
        ({"parameters": 500_000_000}, False),  # a small model: full fine-tuning is fine
        ({"parameters": None}, False),  # size not known: silent
        ({"method": "lora"}, False),
        ({"method": "qlora"}, False),
        ({"emissions_kg": 0.0}, False),  # nothing recorded yet
    ],
)
def test_parameter_efficient_fires_for_full_fine_tuning_of_large_models(
    change: dict[str, object], fires: bool
) -> None:
    found = parameter_efficient(replace(JOB_FACTS, **change))  # type: ignore[arg-type]
    assert (found is not None) == fires


def test_parameter_efficient_saving_is_the_assumed_fraction_of_the_recorded_emissions() -> None:
    found = parameter_efficient(JOB_FACTS, Thresholds(parameter_efficient_saved_fraction=0.25))
    assert found is not None
    assert found.saving_kg == 0.125
    assert (found.rule, found.target_kind, found.target, found.namespace) == (
        PARAMETER_EFFICIENT, JOB, "tune", "team"
    )  # fmt: skip
    assert any("75%" in a for a in found.assumptions)  # the fraction is stated
    assert any("8,000,000,000" in a for a in found.assumptions)
    default = parameter_efficient(JOB_FACTS)
    assert (
        default is not None
        and default.saving_kg == 0.5 * DEFAULTS.parameter_efficient_saved_fraction
    )


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("Qwen/Qwen2.5-0.5B", 500_000_000),
        ("Qwen/Qwen2.5-1.5B-Instruct", 1_500_000_000),
        ("meta-llama/Llama-3.1-8B-Instruct", 8_000_000_000),
        ("HuggingFaceTB/SmolLM2-135M", 135_000_000),
        ("mistralai/Mixtral-8x7B-v0.1", 56_000_000_000),
        ("google/gemma-2b-it", 2_000_000_000),
        ("pvc://model-garden-artifacts/base/tiny-llama", None),
        ("org/base", None),
        (None, None),
    ],
)
def test_parameter_count_from_the_model_name(name: str | None, count: int | None) -> None:
    assert parameters_from_name(name) == count


# --- lower-intensity region ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regions", "best"),
    [
        ({"DEU": 250.0, "FRA": 50.0, "SWE": 40.0}, "SWE"),  # the cleanest other region
        ({"FRA": 225.0}, "FRA"),  # exactly the minimum gain (10% below 250)
        ({"FRA": 230.0}, None),  # less than 10% cleaner: not worth a move
        ({"DEU": 10.0}, None),  # only the current region
        ({"POL": 700.0}, None),  # dirtier
        ({}, None),
    ],
)
def test_lower_intensity_region_fires_for_a_cleaner_configured_region(
    regions: dict[str, float], best: str | None
) -> None:
    found = lower_intensity_region(JOB_FACTS, regions)
    assert (found.message.split(" in ")[1].split(" ")[0] if found else None) == best


def test_lower_intensity_region_saving_is_energy_times_the_intensity_difference() -> None:
    found = lower_intensity_region(JOB_FACTS, {"SWE": 50.0, "FRA": 62.5})
    assert found is not None and found.target_kind == JOB
    assert found.saving_kg == 2.0 * (250.0 - 50.0) / 1000.0 == 0.4
    served = lower_intensity_region(DEP_FACTS, {"SWE": 50.0})
    assert served is not None and served.target_kind == DEPLOYMENT
    assert served.saving_kg == 0.3  # 2 kWh x (200 - 50) g/kWh


def test_lower_intensity_region_uses_emissions_over_energy_without_a_recorded_intensity() -> None:
    facts = replace(JOB_FACTS, intensity_g_per_kwh=None)  # 0.5 kg / 2 kWh = 250 g/kWh
    found = lower_intensity_region(facts, {"SWE": 50.0})
    assert found is not None and found.saving_kg == 0.4
    unknown = replace(JOB_FACTS, intensity_g_per_kwh=None, emissions_kg=0.0)
    assert lower_intensity_region(unknown, {"SWE": 50.0}) is None


# --- lower-intensity time window ----------------------------------------------------------------


def _forecast(*values: float, hours: float = 1.0) -> list[ForecastPoint]:
    return [ForecastPoint(T0 + timedelta(hours=hours * i), v) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("forecast", "duration", "start_hour"),
    [
        (_forecast(400, 400, 300, 100, 100, 200), 7200.0, 3),  # 2 points: best mean 100 at 15:00
        (_forecast(400, 100, 400, 100, 400), 7200.0, None),  # no 2-hour window is cleaner enough
        (_forecast(400, 100, 400, 100, 400), 3600.0, 1),  # a 1-hour run fits a trough
        (_forecast(100, 400, 400, 400), 3600.0, None),  # now is the cleanest
        (_forecast(400, 100), 7200.0, None),  # the forecast is shorter than two runs
        (_forecast(400), 3600.0, None),
        (_forecast(400, 200, 200), None, None),  # duration not known
    ],
)
def test_lower_intensity_window_fires_for_a_cleaner_forecast_window(
    forecast: list[ForecastPoint], duration: float | None, start_hour: int | None
) -> None:
    found = lower_intensity_window(replace(JOB_FACTS, duration_seconds=duration), forecast)
    if start_hour is None:
        assert found is None
    else:
        assert found is not None
        start = (T0 + timedelta(hours=start_hour)).isoformat().replace("+00:00", "Z")
        assert f"at {start}" in found.message


def test_lower_intensity_window_saving_is_energy_times_now_minus_best_mean() -> None:
    points = _forecast(400, 400, 300, 100, 100, 200)
    found = lower_intensity_window(replace(JOB_FACTS, energy_kwh=1.0), list(reversed(points)))
    assert found is not None and found.rule == LOWER_INTENSITY_WINDOW
    assert found.saving_kg == 1.0 * (400.0 - 100.0) / 1000.0  # points are sorted by time first
    assert any("2 forecast points" in a for a in found.assumptions)


# --- early stopping -----------------------------------------------------------------------------


def _evals(*pairs: tuple[int, float]) -> tuple[EvalPoint, ...]:
    return tuple(EvalPoint(step, loss) for step, loss in pairs)


FLAT = _evals((50, 2.0), (100, 1.5), (150, 1.49), (200, 1.495), (250, 1.48), (400, 1.479))


@pytest.mark.parametrize(
    ("evals", "steps", "stop"),
    [
        (FLAT, 400, 200),  # 150 and 200 gain under 1% on 1.5: stopped at 200
        (_evals((50, 2.0), (100, 1.6), (150, 1.3), (200, 1.1), (400, 0.9)), 400, None),
        (_evals((50, 2.0), (100, 1.5), (150, 1.6), (200, 1.2), (250, 1.19)), 400, None),
        (_evals((100, 2.0), (200, 1.999), (400, 1.998)), 400, None),  # flat only at the end
        (_evals((100, 2.0)), 400, None),
        ((), 400, None),
    ],
)
def test_early_stopping_fires_when_eval_loss_flattened_before_the_end(
    evals: tuple[EvalPoint, ...], steps: int, stop: int | None
) -> None:
    found = early_stopping(replace(JOB_FACTS, evals=evals, steps=steps))
    assert (found is not None) == (stop is not None)
    if found is not None:
        assert f"at step {stop};" in found.message


def test_plateau_step_follows_patience_and_min_delta() -> None:
    assert plateau_step(FLAT) == 200
    assert plateau_step(FLAT, Thresholds(eval_patience=3)) == 250
    assert plateau_step(FLAT, Thresholds(eval_min_delta=0.001)) is None


def test_early_stopping_saving_is_the_steps_after_the_plateau_times_energy_per_step() -> None:
    found = early_stopping(replace(JOB_FACTS, evals=FLAT))
    assert found is not None and found.rule == EARLY_STOPPING
    # 200 of 400 steps after the plateau: 2 kWh / 400 x 200 x 250 g/kWh = 0.25 kg
    assert found.saving_kg == 0.5 * 200 / 400 == 0.25
    assert early_stopping(replace(JOB_FACTS, evals=None)) is None


# --- idle deployment ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "advice", "saving"),
    [
        ({}, None, None),  # 25% idle, 0.139 tokens/J: fine
        ({"idle_energy_kwh": 1.5, "idle_emissions_kg": 0.375}, "scale to zero when idle", 0.375),
        ({"idle_energy_kwh": 1.0}, "scale to zero when idle", 0.2),  # 50%: 1 kWh x 200 g/kWh
        ({"tokens": 0, "idle_energy_kwh": 2.0}, "served no token", 0.4),
        ({"tokens": 1000}, "batch requests", 0.1),  # 0.5 kWh idle x 200 g/kWh
        ({"tokens": 1000, "intensity_g_per_kwh": None, "emissions_kg": 0.0}, None, None),
        ({"energy_kwh": 0.0}, None, None),
        ({"tokens": 0, "idle_energy_kwh": 2.0, "replicas": 0}, None, None),  # already at zero
    ],
)
def test_idle_deployment_fires_for_long_idle_or_few_tokens_per_joule(
    change: dict[str, object], advice: str | None, saving: float | None
) -> None:
    found = idle_deployment(replace(DEP_FACTS, **change))  # type: ignore[arg-type]
    if advice is None:
        assert found is None
        return
    assert found is not None and found.rule == IDLE_DEPLOYMENT and found.target_kind == DEPLOYMENT
    assert advice in found.message
    assert found.saving_kg == saving


# --- right-size GPUs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needed"),
    [
        ({"gpu_utilisation": 0.2}, 1),  # 4 GPUs at 20%: one at 80% does it
        ({"gpu_utilisation": 0.4}, 2),
        ({"gpu_utilisation": 0.5}, None),  # busy enough
        ({"gpu_utilisation": None}, None),  # not known: silent
        ({"gpu_utilisation": 0.1, "gpus": 1}, None),  # one GPU: no fewer to use
        ({"gpu_utilisation": 0.1, "gpus": 0}, None),
    ],
)
def test_right_size_gpus_fires_when_fewer_gpus_would_do(
    change: dict[str, object], needed: int | None
) -> None:
    found = right_size_gpus(replace(JOB_FACTS, **change))  # type: ignore[arg-type]
    assert (found is not None) == (needed is not None)
    if found is not None:
        assert f": {needed} would do" in found.message


def test_right_size_gpus_saving_is_the_removed_gpus_share_of_gpu_energy() -> None:
    found = right_size_gpus(replace(JOB_FACTS, gpu_utilisation=0.2))
    assert found is not None and found.rule == RIGHT_SIZE_GPUS
    assert found.saving_kg == 1.5 * 3 / 4 * 250.0 / 1000.0 == 0.28125  # GPU share: 1.5 kWh
    served = right_size_gpus(replace(DEP_FACTS, gpu_utilisation=0.25))
    assert served is not None and served.target_kind == DEPLOYMENT
    assert served.saving_kg == 2.0 * 1 / 2 * 200.0 / 1000.0 == 0.2  # no GPU share: all energy


# --- the engine ---------------------------------------------------------------------------------


def test_evaluate_runs_every_rule_biggest_saving_first_and_says_what_it_lacked() -> None:
    job = replace(JOB_FACTS, evals=FLAT)
    advice = evaluate([job], [replace(DEP_FACTS, idle_energy_kwh=1.5, idle_emissions_kg=0.3)])
    rules = [(r.rule, r.target) for r in advice.recommendations]
    assert rules == [
        (IDLE_DEPLOYMENT, "bot"),  # 0.3
        (EARLY_STOPPING, "tune"),  # 0.25
        (PARAMETER_EFFICIENT, "tune"),  # 0.1667
    ]
    savings = [r.saving_kg for r in advice.recommendations]
    assert savings == sorted(savings, reverse=True)
    unknown = {(u.rule, u.target, u.reason) for u in advice.unknown}
    assert (RIGHT_SIZE_GPUS, "tune", "GPU utilisation not known") in unknown
    assert (RIGHT_SIZE_GPUS, "bot", "GPU utilisation not known") in unknown
    assert (LOWER_INTENSITY_REGION, "", "no candidate regions") in unknown
    assert (LOWER_INTENSITY_WINDOW, "", "no intensity forecast") in unknown


def test_evaluate_with_regions_and_forecast() -> None:
    advice = evaluate(
        [replace(JOB_FACTS, method="lora", evals=())],
        [],
        regions={"SWE": 50.0},
        forecast=_forecast(400, 400, 300, 100, 100, 200),
    )
    assert {r.rule for r in advice.recommendations} == {
        LOWER_INTENSITY_REGION, LOWER_INTENSITY_WINDOW
    }  # fmt: skip
    assert not [u for u in advice.unknown if u.rule != RIGHT_SIZE_GPUS]


def test_evaluate_is_silent_on_nothing() -> None:
    advice = evaluate([], [], regions={"SWE": 50.0}, forecast=_forecast(1, 2))
    assert advice.recommendations == [] and advice.unknown == []
