"""Grid intensity: lookup by country, sub-national region and cloud region, and the precedence."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from model_garden.carbon import grid as grid_module
from model_garden.carbon.grid import (
    WORLD_AVERAGE_G_PER_KWH,
    Grid,
    GridConfig,
    GridIntensity,
    grid_intensity,
    resolve,
)
from model_garden.carbon.providers import LiveReading
from model_garden.carbon.regions import (
    DATA_DIR,
    AmbiguousRegion,
    cloud_region,
    cloud_regions,
    country_grids,
)
from model_garden.carbon.report import cloud_regions as cloud_rows
from model_garden.carbon.report import region_intensity, regions

LIVE = LiveReading("electricitymaps", "FR", 42.0, datetime(2026, 11, 27, 16, tzinfo=UTC))


@pytest.fixture(autouse=True)
def _tables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded tables, whatever this machine has installed or configured."""
    monkeypatch.setattr(grid_module, "codecarbon_mix", lambda: {})
    monkeypatch.delenv(grid_module.CONFIG_ENV, raising=False)
    grid_module.default_grid.cache_clear()


@pytest.mark.parametrize("name", ["countries.csv", "subnational.csv", "cloud_regions.csv"])
def test_every_table_row_has_a_source_and_a_year(name: str) -> None:
    with (DATA_DIR / name).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        assert row["source"].strip(), row
        assert 2000 <= int(row["year"]) <= 2030, row
        assert 0 <= float(row["g_per_kwh"]) < 2000, row


def test_the_three_clouds_are_covered_and_aws_azure_say_they_are_location_averages() -> None:
    table = cloud_regions()
    for provider in ("aws", "gcp", "azure"):
        assert sum(r.provider == provider for r in table.values()) >= 20
    assert {r.basis for r in table.values() if r.provider == "gcp"} == {"provider"}
    for row in table.values():
        if row.provider != "gcp":
            assert row.basis == "location-grid-average"
            assert row.source.startswith("grid average of "), row
        assert row.country in country_grids(), row


@pytest.mark.parametrize(
    ("country", "region", "g", "source", "kind", "time"),
    [
        ("FRA", None, 56.039, "country-table:Ember 2023", "country", "2023"),
        ("fra", None, 56.039, "country-table:Ember 2023", "country", "2023"),
        ("XYZ", None, WORLD_AVERAGE_G_PER_KWH, "world average", "world-average", None),
        (None, None, WORLD_AVERAGE_G_PER_KWH, "world average", "world-average", None),
        (
            "USA",
            "california",
            179.1,
            "subnational-table:EPA eGRID2023 CA 2023",
            "subnational",
            "2023",
        ),
        (
            "CAN",
            "QC",
            31.2,
            "subnational-table:CodeCarbon Canada mix QC 2023",
            "subnational",
            "2023",
        ),
        ("USA", "atlantis", 369.473, "country-table:Ember 2023", "country", "2023"),
        (
            None,
            "gcp:europe-west1",
            122.0,
            "gcp-table:Google region-carbon 2023",
            "cloud-region",
            "2023",
        ),
        (None, "europe-west9", 34.0, "gcp-table:Google region-carbon 2023", "cloud-region", "2023"),
        ("USA", "aws:eu-west-3", 56.0, "aws-table:Ember FRA 2023", "cloud-region", "2023"),
        (None, "AWS:US-EAST-1", 244.8, "aws-table:EPA eGRID2023 VA 2023", "cloud-region", "2023"),
        (None, "azure:francecentral", 56.0, "azure-table:Ember FRA 2023", "cloud-region", "2023"),
        (None, "westus2", 120.9, "azure-table:EPA eGRID2023 WA 2023", "cloud-region", "2023"),
    ],
)
def test_lookup(
    country: str | None, region: str | None, g: float, source: str, kind: str, time: str | None
) -> None:
    got = grid_intensity(country, region)
    assert got.g_per_kwh == pytest.approx(g)
    assert (got.source, got.kind, got.time) == (source, kind, time)


def test_a_cloud_region_names_its_country_and_its_canonical_name() -> None:
    got = grid_intensity("USA", "eu-west-3")
    assert (got.country, got.region) == ("FRA", "aws:eu-west-3")
    assert got.detail and got.detail.startswith("location-grid-average: grid average of France")
    gcp = grid_intensity(None, "us-central1")
    assert (gcp.country, gcp.region) == ("USA", "gcp:us-central1")
    assert gcp.detail and gcp.detail.startswith("provider: Google Cloud")


def test_a_bare_region_two_clouds_use_is_ambiguous_and_falls_back_to_the_country(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = dict(cloud_regions())
    clash = table["aws:eu-west-3"]
    table["gcp:eu-west-3"] = type(clash)(**{**clash.__dict__, "provider": "gcp"})
    monkeypatch.setattr("model_garden.carbon.regions.cloud_regions", lambda: table)
    with pytest.raises(AmbiguousRegion, match="aws:eu-west-3 or gcp:eu-west-3"):
        cloud_region("eu-west-3")
    assert cloud_region("gcp:eu-west-3") is not None
    assert grid_intensity("DEU", "eu-west-3").source == "country-table:Ember 2023"
    assert cloud_region("oci:eu-west-3") is None and cloud_region("") is None


# The precedence, one behaviour per row: override > live > cloud region > sub-national >
# country > world average.
PRECEDENCE = [
    # name, country, region, overrides, live, expected source, expected g/kWh
    (
        "override by cloud region",
        "FRA",
        "aws:eu-west-3",
        {"aws:eu-west-3": 12.0},
        LIVE,
        "override:aws:eu-west-3",
        12.0,
    ),
    (
        "override by bare region",
        None,
        "eu-west-3",
        {"eu-west-3": 13.0},
        None,
        "override:eu-west-3",
        13.0,
    ),
    (
        "override keys ignore case",
        None,
        "eu-west-3",
        {"AWS:EU-West-3": 14.0},
        None,
        "override:AWS:EU-West-3",
        14.0,
    ),
    (
        "region override beats country override",
        None,
        "eu-west-3",
        {"FRA": 10.0, "aws:eu-west-3": 11.0},
        None,
        "override:aws:eu-west-3",
        11.0,
    ),
    (
        "country override covers its cloud regions",
        None,
        "eu-west-3",
        {"FRA": 10.0},
        None,
        "override:FRA",
        10.0,
    ),
    ("override by country", "FRA", None, {"FRA": 10.0}, LIVE, "override:FRA", 10.0),
    (
        "override by sub-national region",
        "USA",
        "california",
        {"california": 99.0},
        None,
        "override:california",
        99.0,
    ),
    (
        "override of another place is ignored",
        "FRA",
        None,
        {"DEU": 1.0},
        None,
        "country-table:Ember 2023",
        56.039,
    ),
    ("live beats the cloud table", None, "aws:eu-west-3", {}, LIVE, "electricitymaps:FR", 42.0),
    ("live beats the country table", "FRA", None, {}, LIVE, "electricitymaps:FR", 42.0),
    (
        "cloud table beats the country",
        "DEU",
        "gcp:europe-west9",
        {},
        None,
        "gcp-table:Google region-carbon 2023",
        34.0,
    ),
    (
        "sub-national beats the country",
        "USA",
        "CA",
        {},
        None,
        "subnational-table:EPA eGRID2023 CA 2023",
        179.1,
    ),
    ("country table", "SWE", "nowhere", {}, None, "country-table:Ember 2023", 40.695),
    ("world average last", "ATL", None, {}, None, "world average", WORLD_AVERAGE_G_PER_KWH),
]


@pytest.mark.parametrize(
    ("country", "region", "overrides", "live", "source", "g"),
    [row[1:] for row in PRECEDENCE],
    ids=[row[0] for row in PRECEDENCE],
)
def test_precedence(
    country: str | None,
    region: str | None,
    overrides: dict[str, float],
    live: LiveReading | None,
    source: str,
    g: float,
) -> None:
    got = resolve(country, region, overrides=overrides, live=live)
    assert got.source == source
    assert got.g_per_kwh == pytest.approx(g)


def test_a_live_result_says_its_time_and_what_it_measures() -> None:
    got = resolve("FRA", None, live=LIVE)
    assert got == GridIntensity(
        42.0,
        "FRA",
        None,
        "electricitymaps:FR",
        "live",
        "2026-11-27T16:00:00+00:00",
        "average intensity",
    )


def test_codecarbon_mix_when_installed_beats_the_embedded_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        grid_module, "codecarbon_mix", lambda: {"FRA": {"carbon_intensity": 50.5, "year": 2024}}
    )
    got = grid_intensity("FRA")
    assert (got.g_per_kwh, got.source, got.time) == (50.5, "codecarbon:2024", "2024")
    assert grid_intensity("DEU").source == "country-table:Ember 2023"


def test_the_configuration_file_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("overrides:\n  aws:eu-west-3: 21\n  DEU: 300\n", encoding="utf-8")
    monkeypatch.setenv(grid_module.CONFIG_ENV, str(path))
    grid_module.default_grid.cache_clear()
    assert grid_intensity(None, "eu-west-3").source == "override:aws:eu-west-3"
    assert grid_intensity("DEU").g_per_kwh == 300.0
    assert grid_intensity("FRA").source == "country-table:Ember 2023"


def test_a_bad_configuration_file_leaves_the_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("overrides:\n  FRA: -3\n", encoding="utf-8")
    monkeypatch.setenv(grid_module.CONFIG_ENV, str(path))
    grid_module.default_grid.cache_clear()
    assert grid_intensity("FRA").source == "country-table:Ember 2023"
    assert "using the tables" in caplog.text
    with pytest.raises(ValueError, match="negative"):
        GridConfig.model_validate({"overrides": {"FRA": -3}})
    with pytest.raises(ValueError):
        GridConfig.model_validate({"provider": {"name": "carbonfairy"}})


def test_zone_for_a_provider_comes_from_the_map_then_the_country() -> None:
    class Quiet:
        name = "electricitymaps"

        def latest(self, zone: str) -> LiveReading | None:
            return None

        def forecast(self, zone: str, hours: int) -> list[tuple[datetime, float]]:
            return []

        def default_zone(self, country: str | None) -> str | None:
            return {"FRA": "FR", "USA": "US"}.get(country or "")

    config = GridConfig.model_validate(
        {"provider": {"name": "electricitymaps", "zones": {"aws:us-east-1": "US-MIDA-PJM"}}}
    )
    grid = Grid(config, provider=Quiet())
    assert grid.zone(None, "us-east-1") == "US-MIDA-PJM"
    assert grid.zone(None, "eu-west-3") == "FR"
    assert grid.zone("USA", "us-west-2") == "US"
    # a provider that does not answer leaves the table's figure and source
    assert grid.intensity(None, "eu-west-3").source == "aws-table:Ember FRA 2023"


def test_cli_rows_for_regions() -> None:
    rows = cloud_rows("aws")
    assert rows and {r["region"].split(":")[0] for r in rows} == {"aws"}
    paris = next(r for r in rows if r["region"] == "aws:eu-west-3")
    assert (paris["country"], paris["basis"], paris["year"]) == (
        "FRA",
        "location-grid-average",
        2023,
    )
    assert len(cloud_rows()) == len(cloud_regions())
    with pytest.raises(ValueError, match="unknown cloud"):
        cloud_rows("oci")
    one = region_intensity(None, "europe-west1")
    assert (one["region"], one["kind"], one["time"]) == ("gcp:europe-west1", "cloud-region", "2023")
    # the country listing keeps its three columns (the CLI's CSV relies on them)
    assert all(list(r) == ["country", "gPerKwh", "source"] for r in regions())


def test_every_report_says_which_intensity_it_used_where_from_and_when() -> None:
    """Issue 13, item 3: the intensity, its source and its time go into every status and report
    (the trainer's and export's CarbonReport, the meter's ServingCarbon, the deployment's status)."""
    from model_garden.api.contracts import ServingCarbon
    from model_garden.carbon.tracker import EnergySplit, build_report
    from model_garden.operator.servingcarbon import _grid
    from model_garden.serving.accounting import Accountant

    report = build_report(EnergySplit(cpu_kwh=1.0), None, "gcp:europe-west1", {})
    assert (report.country, report.region) == ("BEL", "gcp:europe-west1")
    assert report.grid_source and report.grid_source.startswith("gcp-table:")
    assert report.grid_time == "2023" and report.emissions_kg == pytest.approx(
        report.grid_intensity_g_per_kwh / 1000  # type: ignore[operator]
    )
    reading: ServingCarbon = Accountant(
        intensity_g_per_kwh=report.grid_intensity_g_per_kwh or 0.0,
        country=report.country,
        region=report.region,
        grid_source=report.grid_source,
        grid_time=report.grid_time,
    ).carbon()
    assert (reading.grid_source, reading.grid_time) == (report.grid_source, "2023")
    status = _grid({}, [reading])
    assert (status["gridSource"], status["gridTime"]) == (report.grid_source, "2023")
