"""Grid carbon intensity (g CO2e per kWh) for a country, from CodeCarbon's energy-mix data.

CodeCarbon ships yearly per-country figures (Our World in Data / Ember). We read its JSON file
directly so the control plane can answer without importing CodeCarbon; where CodeCarbon is not
installed, a short embedded table and the world average stand in, and the source says so.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

WORLD_AVERAGE_G_PER_KWH = 475.0
"""IEA world average, what CodeCarbon itself falls back to for an unknown country."""

FALLBACK_G_PER_KWH = {
    "FRA": 56.0,
    "DEU": 381.0,
    "GBR": 211.0,
    "USA": 369.0,
    "CAN": 128.0,
    "SWE": 41.0,
    "NOR": 30.0,
    "IRL": 283.0,
    "NLD": 268.0,
    "IND": 713.0,
    "CHN": 582.0,
    "JPN": 485.0,
}


@dataclass(frozen=True)
class GridIntensity:
    g_per_kwh: float
    country: str
    region: str | None
    source: str


@lru_cache(maxsize=1)
def codecarbon_mix() -> dict[str, dict[str, object]]:
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "data/private_infra/global_energy_mix.json"
    )
    if not path.exists():
        return {}
    data: dict[str, dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def grid_intensity(country: str | None, region: str | None = None) -> GridIntensity:
    """Intensity for an ISO 3166-1 alpha-3 country (the region is recorded, not yet resolved)."""
    code = (country or "").upper()
    mix = codecarbon_mix().get(code, {})
    value = mix.get("carbon_intensity")
    if isinstance(value, int | float):
        year = mix.get("year", "")
        return GridIntensity(float(value), code, region, f"codecarbon energy mix {year}".strip())
    if code in FALLBACK_G_PER_KWH:
        return GridIntensity(FALLBACK_G_PER_KWH[code], code, region, "model-garden embedded table")
    return GridIntensity(WORLD_AVERAGE_G_PER_KWH, code or "WORLD", region, "world average")


def emissions_kg(energy_kwh: float, intensity_g_per_kwh: float) -> float:
    """kg CO2e for an energy at an intensity."""
    return energy_kwh * intensity_g_per_kwh / 1000.0


JOULES_PER_KWH = 3_600_000.0
