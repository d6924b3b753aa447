"""The grid's intensity where a FineTuneJob runs, as the operator reads it for scheduling.

One :class:`~model_garden.carbon.grid.Grid` per operator process (its live provider's cache
lives as long as it): the cluster's overrides win, then the provider (when the chart configures
one; a failing provider falls back to the tables with a warning), then the tables.
"""

from __future__ import annotations

from model_garden.api import FineTuneJob
from model_garden.carbon.grid import Grid, GridConfig

from .finetunejob.schedule import GridNow
from .settings import OperatorSettings


def operator_grid(settings: OperatorSettings) -> Grid:
    return Grid(GridConfig(overrides=settings.grid_overrides, provider=settings.grid_provider))


def grid_now(grid: Grid, ftj: FineTuneJob, settings: OperatorSettings) -> GridNow:
    """The intensity for the job's country and region (the operator's defaults otherwise)."""
    country = ftj.spec.carbon.country or settings.default_country
    region = ftj.spec.carbon.region or settings.default_region
    reading = grid.intensity(country, region)
    return GridNow(reading.g_per_kwh, reading.source, reading.time)
