"""The recommendation rules: each a pure function from the facts about one FineTuneJob or
InferenceDeployment (and the inputs it needs, :mod:`.model`) to one Recommendation, or None.

Every rule is silent when a fact it needs is not known: it never guesses a figure it would then
present as a saving. Savings are kg CO2e, computed from the recorded energy and emissions; the
assumptions each one rests on travel with it (docs/carbon.md explains every rule).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from .model import (
    DEFAULTS,
    DEPLOYMENT,
    EARLY_STOPPING,
    HIGH,
    IDLE_DEPLOYMENT,
    JOB,
    LOW,
    LOWER_INTENSITY_REGION,
    LOWER_INTENSITY_WINDOW,
    MEDIUM,
    PARAMETER_EFFICIENT,
    RIGHT_SIZE_GPUS,
    DeploymentFacts,
    EvalPoint,
    Facts,
    ForecastPoint,
    JobFacts,
    Recommendation,
    Thresholds,
)


def kind_of(facts: Facts) -> str:
    return JOB if isinstance(facts, JobFacts) else DEPLOYMENT


def _kg(kg: float) -> str:
    return f"{kg:.3g} kg CO2e"


def _intensity(facts: Facts) -> float | None:
    """The grid intensity the figures were computed with: the recorded one, else emissions over
    energy (None when neither is known)."""
    if facts.intensity_g_per_kwh is not None:
        return facts.intensity_g_per_kwh
    if facts.energy_kwh > 0 and facts.emissions_kg > 0:
        return facts.emissions_kg * 1000.0 / facts.energy_kwh
    return None


_SIZE = re.compile(r"(?<![A-Za-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)([BbMm])(?![A-Za-z0-9])")


def parameters_from_name(model: str | None) -> int | None:
    """The parameter count a model's name states (``Qwen2.5-0.5B`` → 5e8, ``SmolLM2-135M``,
    ``Mixtral-8x7B`` → 5.6e10), or None: most hub names carry it, no other source is read."""
    if not model:
        return None
    found = None
    for match in _SIZE.finditer(model.rsplit("/", 1)[-1].replace("_", "-")):
        experts, size, unit = match.groups()
        count = float(size) * (1e9 if unit in "Bb" else 1e6) * (int(experts) if experts else 1)
        found = round(count)
    return found


# --- the rules ----------------------------------------------------------------------------------


def parameter_efficient(job: JobFacts, t: Thresholds = DEFAULTS) -> Recommendation | None:
    """Full fine-tuning of a large model: LoRA/QLoRA would train a small fraction of the weights.

    Fires when ``method`` is ``full`` and the base model has at least
    ``large_model_parameters`` parameters. Saving = recorded emissions × the assumed saved
    fraction (``parameter_efficient_saved_fraction``: no weight gradients and no optimizer
    state for the frozen weights, about a third of a step's compute)."""
    if job.method != "full" or job.parameters is None or job.emissions_kg <= 0:
        return None
    if job.parameters < t.large_model_parameters:
        return None
    saving = job.emissions_kg * t.parameter_efficient_saved_fraction
    billions = job.parameters / 1e9
    return Recommendation(
        rule=PARAMETER_EFFICIENT,
        target_kind=JOB,
        target=job.name,
        namespace=job.namespace,
        message=(
            f"{job.name} fully fine-tunes a {billions:.3g}B-parameter model: LoRA (or QLoRA, to"
            f" fit fewer GPUs) trains under 1% of the weights; about {_kg(saving)} less per run"
        ),
        saving_kg=saving,
        assumptions=[
            f"a LoRA run emits {1 - t.parameter_efficient_saved_fraction:.0%} of a full run's"
            " emissions for the same steps (no weight gradients, no optimizer state for the"
            " frozen weights)",
            f"the model has {job.parameters:,} parameters (from its name: {job.base_model})",
            "the adapter reaches the quality the task needs; compare eval loss before switching",
        ],
        confidence=LOW,
    )


def lower_intensity_region(
    facts: Facts, regions: Mapping[str, float], t: Thresholds = DEFAULTS
) -> Recommendation | None:
    """A configured region whose grid is cleaner than the one the object ran in.

    ``regions`` maps each candidate region (as configured) to its intensity, g CO2e/kWh.
    Fires when the cleanest candidate other than the current region is at least
    ``min_intensity_gain`` (a share) below the current intensity. Saving = recorded energy ×
    (current − best) intensity / 1000."""
    current = _intensity(facts)
    candidates = {r: g for r, g in regions.items() if r != facts.region}
    if current is None or facts.energy_kwh <= 0 or not candidates:
        return None
    best_region, best = min(candidates.items(), key=lambda item: (item[1], item[0]))
    if best > current * (1 - t.min_intensity_gain):
        return None
    saving = facts.energy_kwh * (current - best) / 1000.0
    doing = "running" if isinstance(facts, JobFacts) else "serving"
    return Recommendation(
        rule=LOWER_INTENSITY_REGION,
        target_kind=kind_of(facts),
        target=facts.name,
        namespace=facts.namespace,
        message=(
            f"{doing} {facts.name} in {best_region} ({best:.0f} g/kWh) instead of"
            f" {facts.region or 'its region'} ({current:.0f} g/kWh) would have emitted"
            f" {_kg(saving)} less"
        ),
        saving_kg=saving,
        assumptions=[
            f"the same energy ({facts.energy_kwh:.4g} kWh) in {best_region}: same hardware,"
            " same data-centre efficiency",
            f"{best_region}'s intensity is {best:.0f} g CO2e/kWh (as configured)",
            "data and model can move there (residency, latency, egress are not weighed)",
        ],
        confidence=MEDIUM,
    )


def _window_means(forecast: Sequence[ForecastPoint], length: int) -> list[float]:
    values = [p.g_per_kwh for p in forecast]
    return [math.fsum(values[i : i + length]) / length for i in range(len(values) - length + 1)]


def lower_intensity_window(
    job: JobFacts, forecast: Sequence[ForecastPoint], t: Thresholds = DEFAULTS
) -> Recommendation | None:
    """A later time window where the forecast grid is cleaner than starting now.

    The run is assumed to last as long as the job did (``duration_seconds``), i.e. ``n``
    forecast points (the points' spacing, rounded up). Fires when the cleanest ``n``-point window
    is at least ``min_intensity_gain`` below the window starting at the first point. Saving =
    recorded energy × (mean now − mean best) / 1000."""
    if job.duration_seconds is None or job.energy_kwh <= 0 or len(forecast) < 2:
        return None
    points = sorted(forecast, key=lambda p: p.time)
    spacing = (points[1].time - points[0].time).total_seconds()
    if spacing <= 0:
        return None
    length = max(1, math.ceil(job.duration_seconds / spacing))
    means = _window_means(points, length)
    if len(means) < 2:
        return None
    now = means[0]
    best_index = min(range(len(means)), key=lambda i: (means[i], i))
    best = means[best_index]
    if best > now * (1 - t.min_intensity_gain):
        return None
    saving = job.energy_kwh * (now - best) / 1000.0
    start = points[best_index].time.isoformat().replace("+00:00", "Z")
    return Recommendation(
        rule=LOWER_INTENSITY_WINDOW,
        target_kind=JOB,
        target=job.name,
        namespace=job.namespace,
        message=(
            f"starting a run like {job.name} at {start} ({best:.0f} g/kWh forecast) instead of"
            f" now ({now:.0f} g/kWh) would emit {_kg(saving)} less;"
            " spec.carbon.schedulingWindow can wait for it"
        ),
        saving_kg=saving,
        assumptions=[
            f"the run uses the same energy ({job.energy_kwh:.4g} kWh) and lasts"
            f" {job.duration_seconds:.0f} s ({length} forecast points)",
            "the forecast holds",
        ],
        confidence=MEDIUM,
    )


def plateau_step(evals: Sequence[EvalPoint], t: Thresholds = DEFAULTS) -> int | None:
    """The step at which early stopping would have ended the run: the evaluation after which
    ``eval_patience`` evaluations in a row failed to improve on the best loss so far by more than
    ``eval_min_delta`` (relative); None when the loss never flattened that long."""
    best, waited = math.inf, 0
    for point in sorted(evals, key=lambda p: p.step):
        if point.loss < best * (1 - t.eval_min_delta):
            best, waited = point.loss, 0
            continue
        best = min(best, point.loss)
        waited += 1
        if waited >= t.eval_patience:
            return point.step
    return None


def early_stopping(job: JobFacts, t: Thresholds = DEFAULTS) -> Recommendation | None:
    """The eval loss flattened well before the run ended.

    Fires when :func:`plateau_step` finds a step before the last one recorded (``steps``).
    Saving = steps after the plateau × energy per step × intensity / 1000, i.e. recorded
    emissions × (steps − plateau step) / steps."""
    if not job.evals or job.steps <= 0 or job.emissions_kg <= 0:
        return None
    stop = plateau_step(job.evals, t)
    if stop is None or stop >= job.steps:
        return None
    after = job.steps - stop
    saving = job.emissions_kg * after / job.steps
    return Recommendation(
        rule=EARLY_STOPPING,
        target_kind=JOB,
        target=job.name,
        namespace=job.namespace,
        message=(
            f"{job.name}'s eval loss stopped improving at step {stop}; the {after} steps after it"
            f" emitted about {_kg(saving)}: stop earlier (fewer maxSteps or epochs)"
        ),
        saving_kg=saving,
        assumptions=[
            f"flattened: {t.eval_patience} evaluations in a row without a"
            f" {t.eval_min_delta:.0%} improvement on the best eval loss",
            "every step used the same energy (energy per step = energy / steps)",
            "eval loss is the quality that matters for this model",
        ],
        confidence=MEDIUM,
    )


def idle_deployment(dep: DeploymentFacts, t: Thresholds = DEFAULTS) -> Recommendation | None:
    """A deployment that is mostly idle, or that serves few tokens per joule.

    Fires when idle energy is at least ``max_idle_share`` of its energy, or when it served fewer
    than ``min_tokens_per_joule`` tokens per joule. Saving = idle energy × intensity / 1000 (the
    meters' idle emissions where recorded): what scaling to zero while idle avoids. Silent for a
    deployment already scaled to zero (no replica wanted or running)."""
    if dep.energy_kwh <= 0 or dep.replicas == 0:
        return None
    idle_share = dep.idle_energy_kwh / dep.energy_kwh
    tokens_per_joule = dep.tokens / (dep.energy_kwh * 3_600_000.0)
    idle = idle_share >= t.max_idle_share
    wasteful = tokens_per_joule < t.min_tokens_per_joule
    if not (idle or wasteful):
        return None
    intensity = _intensity(dep)
    if dep.idle_emissions_kg > 0:
        saving = dep.idle_emissions_kg
    elif intensity is not None:
        saving = dep.idle_energy_kwh * intensity / 1000.0
    else:
        return None
    if dep.tokens == 0:
        advice = "it served no token: scale it to zero (replicas 0) until it is needed"
    elif idle:
        advice = f"it was idle for {idle_share:.0%} of its energy: scale to zero when idle"
    else:
        advice = (
            f"it served {tokens_per_joule:.3g} tokens/J: batch requests (more concurrent"
            " requests per replica) or share one replica between adapters"
        )
    return Recommendation(
        rule=IDLE_DEPLOYMENT,
        target_kind=DEPLOYMENT,
        target=dep.name,
        namespace=dep.namespace,
        message=f"{dep.name}: {advice}; its idle time emitted {_kg(saving)}",
        saving_kg=saving,
        assumptions=[
            "idle energy is avoidable: requests can wait for a cold start",
            f"low: under {t.min_tokens_per_joule} tokens/J or over {t.max_idle_share:.0%} of"
            " the energy idle",
        ],
        confidence=HIGH if idle else LOW,
    )


def right_size_gpus(facts: Facts, t: Thresholds = DEFAULTS) -> Recommendation | None:
    """GPUs mostly unused: the same work fits on fewer.

    Needs the mean GPU utilisation (0–1); silent when it is not known, when it is above
    ``max_gpu_utilisation``, or when fewer GPUs would not do (one GPU). Needed =
    ceil(gpus × utilisation / target_gpu_utilisation), at least 1. Saving = GPU energy ×
    (gpus − needed) / gpus × intensity / 1000 (GPU energy: the recorded GPU share, else all the
    energy)."""
    u = facts.gpu_utilisation
    if u is None or facts.gpus < 2 or u > t.max_gpu_utilisation:
        return None
    intensity = _intensity(facts)
    if intensity is None:
        return None
    needed = max(1, math.ceil(facts.gpus * u / t.target_gpu_utilisation))
    if needed >= facts.gpus:
        return None
    gpu_kwh = facts.gpu_energy_kwh if isinstance(facts, JobFacts) else 0.0
    gpu_kwh = gpu_kwh or facts.energy_kwh
    saving = gpu_kwh * (facts.gpus - needed) / facts.gpus * intensity / 1000.0
    if saving <= 0:
        return None
    return Recommendation(
        rule=RIGHT_SIZE_GPUS,
        target_kind=kind_of(facts),
        target=facts.name,
        namespace=facts.namespace,
        message=(
            f"{facts.name} used its {facts.gpus} GPUs at {u:.0%} on average: {needed} would do;"
            f" about {_kg(saving)} less"
        ),
        saving_kg=saving,
        assumptions=[
            "GPU energy is shared evenly between the GPUs and a removed GPU's share is saved"
            " (an upper bound: the others then work harder)",
            f"the work fits {needed} GPU(s) at {t.target_gpu_utilisation:.0%} utilisation"
            " (memory permitting)",
        ],
        confidence=LOW,
    )
