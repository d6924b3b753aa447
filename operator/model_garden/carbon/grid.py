"""Grid carbon intensity (g CO2e per kWh) for a country or a cloud region, and where it came from.

:func:`resolve` decides, from data only (no I/O), in this order; the first that answers wins:

====  ===================================================  ==========================================
rank  what                                                 ``source`` of the result
====  ===================================================  ==========================================
1     an override (chart ConfigMap / CLI config): keys     ``override:<key>``
      tried: ``provider:region``, the region as written,
      then the country
2     a live provider's reading, when configured and it    ``electricitymaps:<zone>`` /
      answered                                             ``watttime:<zone>``
3     the cloud-region table (``aws:eu-west-3``, a bare    ``<cloud>-table:<ref> <year>``
      region when only one cloud has it)
4     the sub-national table (US state, Canadian           ``subnational-table:<ref> <year>``
      province) for ``country`` + ``region``
5     the country: CodeCarbon's mix when installed, else   ``codecarbon:<year>`` /
      the embedded snapshot of it                          ``country-table:Ember <year>``
6     the world average                                    ``world average``
====  ===================================================  ==========================================

Each result carries the intensity, the country and region it is for, its ``source``, a longer
``detail`` (the citation), and ``time``: the ISO instant of a live reading or the year of a table.
:func:`grid_intensity` is what the tracker, the meter and batch inference call: it reads the
configuration named by ``MODEL_GARDEN_GRID_CONFIG`` (see :class:`GridConfig`), asks the live
provider when one is configured, and resolves.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from .providers import (
    ElectricityMaps,
    ForecastPoint,
    LiveProvider,
    LiveReading,
    WattTime,
    read_secret,
)
from .regions import (
    AmbiguousRegion,
    CloudRegion,
    cloud_region,
    country_grids,
    subnational_grid,
)

log = logging.getLogger(__name__)

WORLD_AVERAGE_G_PER_KWH = 475.0
"""IEA world average, what CodeCarbon itself falls back to for an unknown country."""

CONFIG_ENV = "MODEL_GARDEN_GRID_CONFIG"
"""Path of the grid configuration file (YAML or JSON; the chart mounts its ConfigMap key)."""


def _fallback() -> dict[str, float]:
    return {code: row.g_per_kwh for code, row in country_grids().items()}


FALLBACK_G_PER_KWH: dict[str, float] = _fallback()
"""The embedded per-country table (a snapshot of CodeCarbon's mix), ISO alpha-3 -> g/kWh."""

Kind = Literal["override", "live", "cloud-region", "subnational", "country", "world-average"]


@dataclass(frozen=True)
class GridIntensity:
    g_per_kwh: float
    country: str
    region: str | None
    source: str
    kind: Kind = "country"
    time: str | None = None
    """The time the figure refers to: an ISO instant (live) or a year (tables)."""
    detail: str | None = None
    """The full citation of a table row, or what the live provider measures."""


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


def _cloud(region: str | None) -> CloudRegion | None:
    try:
        return cloud_region(region)
    except AmbiguousRegion as exc:
        log.warning("grid intensity: %s; using the country", exc)
        return None


def _override(
    overrides: Mapping[str, float], cloud: CloudRegion | None, region: str | None, country: str
) -> tuple[str, float] | None:
    keys = [cloud.name if cloud else None, region, country or None]
    lowered = {k.lower(): (k, v) for k, v in overrides.items()}
    for key in keys:
        if key and key.lower() in lowered:
            return lowered[key.lower()]
    return None


def country_intensity(code: str, region: str | None = None) -> GridIntensity:
    """Ranks 5 and 6: CodeCarbon's mix, the embedded table, the world average."""
    mix = codecarbon_mix().get(code, {})
    value = mix.get("carbon_intensity")
    if isinstance(value, int | float):
        year = str(mix.get("year", ""))
        return GridIntensity(
            float(value),
            code,
            region,
            f"codecarbon:{year}",
            "country",
            year or None,
            "CodeCarbon global_energy_mix (Ember / Our World in Data)",
        )
    row = country_grids().get(code)
    if row is not None:
        return GridIntensity(
            row.g_per_kwh,
            code,
            region,
            f"country-table:Ember {row.year}",
            "country",
            str(row.year),
            row.source,
        )
    return GridIntensity(
        WORLD_AVERAGE_G_PER_KWH,
        code or "WORLD",
        region,
        "world average",
        "world-average",
        None,
        "IEA world average (CodeCarbon's fallback)",
    )


def resolve(
    country: str | None,
    region: str | None = None,
    *,
    overrides: Mapping[str, float] | None = None,
    live: LiveReading | None = None,
) -> GridIntensity:
    """The intensity for a country and/or region, by the precedence in the module docstring.

    Pure: the live reading, if any, was fetched by the caller (:meth:`Grid.intensity`).
    A cloud region names its own country, which wins over ``country``.
    """
    region = region.strip() if region and region.strip() else None
    cloud = _cloud(region)
    code = cloud.country if cloud else (country or "").upper()
    shown = cloud.name if cloud else region
    hit = _override(overrides or {}, cloud, region, code)
    if hit is not None:
        key, value = hit
        return GridIntensity(
            float(value), code or "WORLD", shown, f"override:{key}", "override", None, None
        )
    if live is not None:
        return GridIntensity(
            live.g_per_kwh,
            code or "WORLD",
            shown,
            f"{live.provider}:{live.zone}",
            "live",
            live.time.isoformat(),
            f"{live.signal} intensity",
        )
    if cloud is not None:
        return GridIntensity(
            cloud.g_per_kwh,
            cloud.country,
            cloud.name,
            f"{cloud.provider}-table:{cloud.ref} {cloud.year}",
            "cloud-region",
            str(cloud.year),
            f"{cloud.basis}: {cloud.source}",
        )
    sub = subnational_grid(code, region)
    if sub is not None:
        return GridIntensity(
            sub.g_per_kwh,
            code,
            region,
            f"subnational-table:{sub.ref} {sub.year}",
            "subnational",
            str(sub.year),
            sub.source,
        )
    return country_intensity(code, region)


class ProviderConfig(BaseModel):
    """A live provider. Credentials are read from files (a mounted Secret) or env vars."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    name: Literal["electricitymaps", "watttime"]
    url: str | None = Field(default=None, description="Base URL; default the provider's own.")
    api_key_file: str | None = Field(default=None, description="Electricity Maps token file.")
    api_key_env: str = "ELECTRICITYMAPS_API_KEY"
    username_file: str | None = Field(default=None, description="WattTime user name file.")
    username_env: str = "WATTTIME_USER"
    password_file: str | None = Field(default=None, description="WattTime password file.")
    password_env: str = "WATTTIME_PASSWORD"
    zones: dict[str, str] = Field(
        default_factory=dict,
        description="Region or country -> provider zone (required for WattTime regions).",
    )
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    cache_seconds: float = Field(default=300.0, ge=0)


class GridConfig(BaseModel):
    """What the chart's ConfigMap key / the CLI config's ``carbon.grid`` holds."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    overrides: dict[str, float] = Field(
        default_factory=dict,
        description="Region (aws:eu-west-3, europe-west1) or ISO alpha-3 country -> g CO2e/kWh.",
    )
    provider: ProviderConfig | None = None

    @field_validator("overrides")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for key, g in value.items():
            if g < 0:
                raise ValueError(f"overrides.{key}: {g} is negative")
        return value

    @classmethod
    def load(cls, path: str | Path) -> GridConfig:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls.model_validate(data)


def make_provider(config: ProviderConfig) -> LiveProvider:
    timeout_s, cache_s = config.timeout_seconds, config.cache_seconds
    if config.name == "electricitymaps":
        key = read_secret(config.api_key_file, config.api_key_env)
        return ElectricityMaps(key, config.url, timeout_s=timeout_s, cache_s=cache_s)
    user = read_secret(config.username_file, config.username_env)
    password = read_secret(config.password_file, config.password_env)
    return WattTime(user, password, config.url, timeout_s=timeout_s, cache_s=cache_s)


class Grid:
    """A configuration and its provider (whose cache lives as long as this object)."""

    def __init__(self, config: GridConfig | None = None, provider: LiveProvider | None = None):
        self.config = config or GridConfig()
        if provider is None and self.config.provider is not None:
            provider = make_provider(self.config.provider)
        self.provider = provider

    def zone(self, country: str | None, region: str | None) -> str | None:
        """The provider zone for a region or country: the configured map, else the default."""
        if self.provider is None:
            return None
        cloud = _cloud(region)
        code = cloud.country if cloud else (country or "").upper()
        zones = {
            k.lower(): v
            for k, v in (self.config.provider.zones if self.config.provider else {}).items()
        }
        for key in (cloud.name if cloud else None, region, code):
            if key and key.lower() in zones:
                return zones[key.lower()]
        return self.provider.default_zone(code)

    def intensity(
        self,
        country: str | None,
        region: str | None = None,
        overrides: Mapping[str, float] | None = None,
    ) -> GridIntensity:
        """:func:`resolve` with this configuration's overrides (``overrides`` given here, e.g.
        the cluster's, pass over them) and, unless an override answers, the provider's latest
        reading for the place's zone."""
        overrides = {**self.config.overrides, **(overrides or {})}
        tables = resolve(country, region, overrides=overrides)
        if self.provider is None or tables.kind == "override":
            return tables
        zone = self.zone(country, region)
        live = self.provider.latest(zone) if zone else None
        return resolve(country, region, overrides=overrides, live=live) if live else tables

    def forecast(
        self, country: str | None, region: str | None = None, hours: int = 24
    ) -> list[ForecastPoint]:
        """The provider's (time, g/kWh) forecast for the zone of this place; ``[]`` without a
        provider, without a zone, or when the provider fails (a warning is logged)."""
        zone = self.zone(country, region)
        if self.provider is None or zone is None:
            return []
        return self.provider.forecast(zone, hours)


@lru_cache(maxsize=1)
def default_grid() -> Grid:
    """The process's grid: the file named by ``MODEL_GARDEN_GRID_CONFIG``, or tables only."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return Grid()
    try:
        return Grid(GridConfig.load(path))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        log.warning(
            "grid intensity: cannot use %s=%s (%s); using the tables", CONFIG_ENV, path, exc
        )
        return Grid()


def grid_intensity(
    country: str | None,
    region: str | None = None,
    overrides: Mapping[str, float] | None = None,
) -> GridIntensity:
    """Intensity for an ISO 3166-1 alpha-3 country and/or a region (cloud or sub-national);
    ``overrides``: the cluster admin's (the operator passes them to its pods' programs)."""
    return default_grid().intensity(country, region, overrides)


def emissions_kg(energy_kwh: float, intensity_g_per_kwh: float) -> float:
    """kg CO2e for an energy at an intensity."""
    return energy_kwh * intensity_g_per_kwh / 1000.0


JOULES_PER_KWH = 3_600_000.0
