"""HTTP polls of running pods: the trainer's /progress and the serving meter's carbon report.

The accumulation of meter readings into ``status.carbon`` is a pure function: each pod reports
totals since it started, so the operator adds per-pod deltas and a restarted pod (totals going
down) counts from zero again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from model_garden.api.contracts import ServingCarbon, TrainingProgress

log = logging.getLogger(__name__)


def fetch_progress(ip: str, port: int, timeout: float) -> TrainingProgress | None:
    """The trainer's /progress, or None when it does not answer (yet)."""
    try:
        response = httpx.get(f"http://{ip}:{port}/progress", timeout=timeout)
        response.raise_for_status()
        return TrainingProgress.model_validate(response.json())
    except (httpx.HTTPError, ValueError, ValidationError) as exc:
        log.debug("no progress from %s:%s: %s", ip, port, exc)
        return None


def fetch_meter(ip: str, port: int, path: str, timeout: float) -> ServingCarbon | None:
    """The serving meter's cumulative ServingCarbon, or None when it does not answer."""
    try:
        response = httpx.get(f"http://{ip}:{port}{path}", timeout=timeout)
        response.raise_for_status()
        return ServingCarbon.model_validate(response.json())
    except (httpx.HTTPError, ValueError, ValidationError) as exc:
        log.debug("no meter reading from %s:%s: %s", ip, port, exc)
        return None


JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Delta:
    energy_kwh: float = 0.0
    emissions_kg: float = 0.0
    tokens: int = 0


def accumulate(
    carbon: dict[str, Any] | None,
    last: dict[str, ServingCarbon],
    readings: dict[str, ServingCarbon],
) -> tuple[dict[str, Any], dict[str, ServingCarbon], Delta]:
    """New ``status.carbon`` (wire form), the per-pod baselines to keep, and what was added.

    A pod seen for the first time since the operator started contributes nothing until its
    next reading (its earlier energy may already be counted); a pod whose totals went down was
    restarted and contributes its whole reading.
    """
    energy_j = emissions_g = 0.0
    tokens = 0
    method = (carbon or {}).get("method", "estimated")
    intensity = (carbon or {}).get("gridIntensityGPerKwh")
    region = (carbon or {}).get("region")
    for pod, reading in readings.items():
        previous = last.get(pod)
        if previous is None:
            continue
        if reading.energy_joules < previous.energy_joules:
            previous = ServingCarbon()
        energy_j += reading.energy_joules - previous.energy_joules
        emissions_g += reading.emissions_grams - previous.emissions_grams
        tokens += max(0, reading.tokens - previous.tokens)
        method = reading.method
        intensity = reading.grid_intensity_g_per_kwh or intensity
        region = reading.region or region
    delta = Delta(max(0.0, energy_j) / JOULES_PER_KWH, max(0.0, emissions_g) / 1000.0, tokens)
    total_kwh = float((carbon or {}).get("energyKwh", 0.0)) + delta.energy_kwh
    total_kg = float((carbon or {}).get("emissionsKg", 0.0)) + delta.emissions_kg
    total_tokens = int((carbon or {}).get("tokens", 0)) + delta.tokens
    out: dict[str, Any] = {
        "energyKwh": total_kwh,
        "emissionsKg": total_kg,
        "tokens": total_tokens,
        "method": method,
    }
    if total_tokens:
        out["gPer1kTokens"] = total_kg * 1000.0 / total_tokens * 1000.0
    if intensity is not None:
        out["gridIntensityGPerKwh"] = intensity
    if region:
        out["region"] = region
    return out, dict(readings), delta
