"""The embedded grid-intensity tables: cloud regions, sub-national grids and countries.

Three CSV files under ``carbon/data/``, each row with its ``source`` and ``year``:

- ``cloud_regions.csv``: AWS, GCP and Azure regions. GCP rows are Google's own published grid
  intensity per region (``basis=provider``, 2023, as CodeCarbon ships them). AWS and Azure
  publish no per-region intensity, so their rows are the grid average of the region's location
  (``basis=location-grid-average``): the US state (EPA eGRID2023), the Canadian province
  (its generation mix times CodeCarbon's per-source factors) or the country (Ember).
- ``subnational.csv``: US states (eGRID2023) and Canadian provinces, by name or code.
- ``countries.csv``: a snapshot of CodeCarbon's per-country mix (Ember / Our World in Data), so
  the control plane answers without CodeCarbon installed.

``carbon/data/README.md`` says how the files were derived.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
PROVIDERS = ("aws", "gcp", "azure")


@dataclass(frozen=True)
class CloudRegion:
    """One cloud region's grid intensity and where the figure comes from."""

    provider: str
    region: str
    location: str
    country: str
    g_per_kwh: float
    basis: str
    """``provider`` (the cloud's own figure) or ``location-grid-average``."""
    ref: str
    source: str
    year: int

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.region}"


@dataclass(frozen=True)
class SubnationalGrid:
    country: str
    region: str
    code: str
    g_per_kwh: float
    ref: str
    source: str
    year: int


@dataclass(frozen=True)
class CountryGrid:
    country: str
    alpha2: str
    name: str
    g_per_kwh: float
    source: str
    year: int


def _read(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@lru_cache(maxsize=1)
def cloud_regions() -> dict[str, CloudRegion]:
    """Every cloud region, keyed ``provider:region``."""
    rows = (
        CloudRegion(
            provider=r["provider"],
            region=r["region"],
            location=r["location"],
            country=r["country"],
            g_per_kwh=float(r["g_per_kwh"]),
            basis=r["basis"],
            ref=r["ref"],
            source=r["source"],
            year=int(r["year"]),
        )
        for r in _read("cloud_regions.csv")
    )
    return {row.name: row for row in rows}


@lru_cache(maxsize=1)
def subnational_grids() -> dict[tuple[str, str], SubnationalGrid]:
    """Sub-national grids keyed (country, lower-case name) and (country, lower-case code)."""
    table: dict[tuple[str, str], SubnationalGrid] = {}
    for r in _read("subnational.csv"):
        row = SubnationalGrid(
            country=r["country"],
            region=r["region"],
            code=r["code"],
            g_per_kwh=float(r["g_per_kwh"]),
            ref=r["ref"],
            source=r["source"],
            year=int(r["year"]),
        )
        table[(row.country, row.region.lower())] = row
        table[(row.country, row.code.lower())] = row
    return table


@lru_cache(maxsize=1)
def country_grids() -> dict[str, CountryGrid]:
    """The embedded per-country table, keyed ISO alpha-3."""
    rows = (
        CountryGrid(
            country=r["country"],
            alpha2=r["alpha2"],
            name=r["name"],
            g_per_kwh=float(r["g_per_kwh"]),
            source=r["source"],
            year=int(r["year"]),
        )
        for r in _read("countries.csv")
    )
    return {row.country: row for row in rows}


class AmbiguousRegion(ValueError):
    """A bare region name that more than one cloud uses."""


def cloud_region(name: str | None) -> CloudRegion | None:
    """``aws:eu-west-3`` (or a bare ``eu-west-3`` that only one cloud uses) -> its row.

    None when no cloud has that region; :class:`AmbiguousRegion` when a bare name is used by
    several clouds (say which with the ``provider:`` prefix).
    """
    if not name:
        return None
    key = name.strip().lower()
    table = cloud_regions()
    provider, sep, bare = key.partition(":")
    if sep:
        return table.get(f"{provider}:{bare}") if provider in PROVIDERS else None
    matches = [table[f"{p}:{key}"] for p in PROVIDERS if f"{p}:{key}" in table]
    if len(matches) > 1:
        raise AmbiguousRegion(
            f"region {name!r} is used by {', '.join(m.provider for m in matches)}: "
            f"write it as {' or '.join(m.name for m in matches)}"
        )
    return matches[0] if matches else None


def subnational_grid(country: str | None, region: str | None) -> SubnationalGrid | None:
    """A US state or Canadian province by name or code (``california``, ``QC``)."""
    if not country or not region:
        return None
    return subnational_grids().get((country.upper(), region.strip().lower()))


def alpha2(country: str | None) -> str | None:
    """ISO alpha-3 -> alpha-2 (``FRA`` -> ``FR``), the zone name Electricity Maps uses."""
    row = country_grids().get((country or "").upper())
    return row.alpha2 if row and row.alpha2 else None
