"""``mg carbon report|regions``: the aggregation on factories (each operation once, the groups add
up to the total exactly), and the command's formats on a store a real local run filled."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pytest

from model_garden.carbon.report import DIMENSIONS, group, records, regions, total
from unit.operator.factories import ftj, idep, mv

from .conftest import Env, one_line_error


def _objects() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Two jobs (one made chat-v1, one failed), chat-v2 from a deleted job and once served by a
    deleted deployment, and a live deployment `bot` that served both versions."""
    carbon = {"energyKwh": 0.5, "emissionsKg": 0.25, "country": "FRA", "method": "measured"}
    jobs = [
        ftj("tune", status={"modelVersion": "chat-v1", "carbon": carbon}),
        ftj("failed", status={"carbon": {**carbon, "emissionsKg": 0.125, "energyKwh": 0.25}}),
    ]
    jobs[1]["metadata"]["labels"] = {"modelgarden.dev/experiment": "exp2"}
    v1 = mv("chat-v1")
    v1["spec"]["source"] = {"fineTuneJob": "tune", "fineTuneJobUid": "uid-tune"}
    v1["spec"]["trainingCarbon"] = {"energyKwh": "0.5", "emissionsKg": "0.25"}
    v2 = mv("chat-v2", version=2)
    v2["metadata"]["labels"]["modelgarden.dev/experiment"] = "exp1"
    v2["spec"]["source"] = {"fineTuneJob": "gone"}
    v2["spec"]["trainingCarbon"] = {"energyKwh": "1", "emissionsKg": "0.5"}
    v2["status"]["servingByDeployment"] = [
        {"deployment": "old", "uid": "uid-old", "energyKwh": 0.125, "emissionsKg": 0.0625, "tokens": 100},
        {"deployment": "bot", "uid": "uid-bot", "energyKwh": 0.25, "emissionsKg": 0.125, "tokens": 100},
    ]  # fmt: skip
    bot = idep(
        "bot",
        modelVersion="chat-v2",
        status={
            "carbon": {
                "energyKwh": 1.5,
                "emissionsKg": 0.75,
                "tokens": 300,
                "region": "FRA",
                "method": "estimated",
                "byModelVersion": [
                    {
                        "modelVersion": "chat-v1",
                        "energyKwh": 1.0,
                        "emissionsKg": 0.5,
                        "tokens": 200,
                    },
                    {
                        "modelVersion": "chat-v2",
                        "energyKwh": 0.25,
                        "emissionsKg": 0.125,
                        "tokens": 100,
                    },
                ],  # fmt: skip
            }
        },
    )
    return jobs, [v1, v2], [bot]


def _by(rows: list[Any]) -> dict[str | None, float]:
    return {r.key: r.emissions_kg for r in rows}


def test_each_operation_counts_once() -> None:
    items, skipped = records(*_objects())
    assert skipped == 0
    # tune, failed (jobs); gone (chat-v2's kept training); bot's two shares and its remainder;
    # the deleted deployment `old` (kept by chat-v2); bot's share in chat-v2 is not counted twice
    assert len(items) == 7
    assert total(items).emissions_kg == 0.25 + 0.125 + 0.5 + 0.75 + 0.0625
    assert _by(group(items, "version")) == {"chat-v1": 0.75, "chat-v2": 0.6875, None: 0.25}
    assert _by(group(items, "job")) == {
        "tune": 0.75, "gone": 0.6875, "failed": 0.125, None: 0.125
    }  # fmt: skip
    assert _by(group(items, "deployment")) == {"bot": 0.75, "old": 0.0625, None: 0.875}
    assert _by(group(items, "experiment")) == {"exp1": 0.9375, "exp2": 0.125, None: 0.625}
    assert _by(group(items, "region")) == {"FRA": 1.125, None: 0.5625}
    operations = {r.key: r for r in group(items, "operation")}
    assert operations["training"].emissions_kg == 0.875
    assert operations["serving"].tokens == 400
    models = {r.key: r for r in group(items, "model")}
    assert models["chat"].training_kg == 0.875 and models["chat"].serving_kg == 0.6875


@pytest.mark.parametrize("by", DIMENSIONS)
def test_groups_add_up_to_the_total(by: str) -> None:
    items, _ = records(*_objects())
    rows = group(items, by)
    whole = total(items)
    assert math.fsum(r.emissions_kg for r in rows) == whole.emissions_kg
    assert math.fsum(r.energy_kwh for r in rows) == whole.energy_kwh
    assert sum(r.operations for r in rows) == whole.operations == len(items)
    assert sum(r.tokens for r in rows) == whole.tokens
    for row in rows:
        assert row.training_kg + row.serving_kg == row.emissions_kg


def test_objects_that_do_not_parse_are_left_out_and_counted() -> None:
    jobs, versions, deployments = _objects()
    items, skipped = records(
        jobs + [{"kind": "FineTuneJob", "metadata": {}}], versions, deployments
    )
    assert skipped == 1 and len(items) == 7
    with pytest.raises(ValueError, match="cannot group by"):
        group(items, "colour")


def test_regions_are_the_trackers_intensities() -> None:
    from model_garden.carbon.grid import grid_intensity

    rows = {r["country"]: r for r in regions()}
    assert rows["FRA"]["gPerKwh"] == grid_intensity("FRA").g_per_kwh
    assert rows["WORLD"]["source"] == "world average"
    (unknown,) = regions("xyz")
    assert (unknown["country"], unknown["source"]) == ("XYZ", "world average")


def test_report_of_a_local_run_in_every_format(trained: Env) -> None:
    env = trained
    as_json = env.run("carbon", "report", "--by", "job", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    job = json.loads(env.run("jobs", "get", "j1", "-o", "json").stdout)
    assert doc["by"] == "job" and doc["skipped"] == 0
    version = json.loads(env.run("versions", "get", "m-v1", "-o", "json").stdout)
    checked = version["status"]["carbonByOperation"]["verification"]["emissionsKg"]
    (row,) = doc["rows"]  # the job's training and its version's verification
    assert row["key"] == "j1" and row["emissions_kg"] == pytest.approx(
        job["status"]["carbon"]["emissionsKg"] + checked
    )
    assert doc["total"]["emissions_kg"] == row["emissions_kg"] > 0
    ops = {(r["version"], r["model"], r["operation"]) for r in doc["records"]}
    assert ops == {("m-v1", "m", "training"), ("m-v1", "m", "verification")}

    rows = list(csv.DictReader(io.StringIO(env.run("carbon", "report", "-o", "csv").stdout)))
    assert [r["version"] for r in rows] == ["m-v1", "total"]
    assert float(rows[0]["emissions_kg"]) == row["emissions_kg"]
    table = env.run("carbon", "report", "--by", "model").stdout.splitlines()
    assert table[0].split()[:4] == ["MODEL", "OPS", "ENERGY", "CO2E"]
    assert table[-2].split()[0] == "m" and table[-1].split()[0] == "total"

    regions_json = json.loads(env.run("carbon", "regions", "-o", "json").stdout)
    assert any(r["country"] == "FRA" for r in regions_json)
    assert "FRA" in env.run("carbon", "regions", "--country", "fra").stdout
    assert env.run("carbon", "regions", "-o", "csv").stdout.startswith("country,g_per_kwh,source")
    bad = env.run("carbon", "report", "--by", "colour")
    assert bad.exit_code == 2 and "--by" in one_line_error(bad)


def test_regions_of_the_clouds_and_what_one_region_resolves_to(env: Env, tmp_path: Any) -> None:
    aws = json.loads(env.run("carbon", "regions", "--cloud", "aws", "-o", "json").stdout)
    assert aws and all(r["region"].startswith("aws:") and r["source"] and r["year"] for r in aws)
    rows = list(
        csv.reader(io.StringIO(env.run("carbon", "regions", "--cloud", "all", "-o", "csv").stdout))
    )
    assert rows[0] == ["region", "location", "country", "gPerKwh", "basis", "source", "year"]
    assert {r[0].split(":")[0] for r in rows[1:]} == {"aws", "gcp", "azure"}
    one = json.loads(
        env.run("carbon", "regions", "--region", "gcp:europe-west1", "-o", "json").stdout
    )
    assert (one["region"], one["kind"], one["country"]) == (
        "gcp:europe-west1",
        "cloud-region",
        "BEL",
    )
    assert one["source"].startswith("gcp-table:") and one["gPerKwh"] > 0
    # an override in the grid configuration wins over the table, and says so
    from model_garden.carbon.grid import default_grid

    grid = tmp_path / "grid.yaml"
    grid.write_text("overrides: {gcp:europe-west1: 12.5}\n")
    default_grid.cache_clear()  # the process reads its grid configuration once
    overridden = env.run(
        "carbon", "regions", "--region", "gcp:europe-west1", "-o", "json",
        MODEL_GARDEN_GRID_CONFIG=str(grid),
    )  # fmt: skip
    default_grid.cache_clear()
    doc = json.loads(overridden.stdout)
    assert (doc["gPerKwh"], doc["kind"]) == (12.5, "override")
    bad = env.run("carbon", "regions", "--cloud", "oracle")
    assert bad.exit_code == 2 and "oracle" in one_line_error(bad)


def test_the_versions_other_operations_are_reported_once_each() -> None:
    """Verification, export, evaluation and batch (status.carbonByOperation) are rows of their
    own; training and serving there are not counted again."""
    jobs, versions, deployments = _objects()
    versions[0]["status"]["carbonByOperation"] = {
        "training": {"energyKwh": 0.5, "emissionsKg": 0.25, "count": 1},
        "serving": {"energyKwh": 1.0, "emissionsKg": 0.5, "count": 1},
        "verification": {"energyKwh": 0.001, "emissionsKg": 0.0005, "count": 1},
        "export": {"energyKwh": 0.02, "emissionsKg": 0.01, "count": 2, "method": "measured"},
    }
    before, _ = records(*_objects())
    items, _ = records(jobs, versions, deployments)
    assert len(items) == len(before) + 2
    ops = {r.key: r for r in group(items, "operation")}
    assert ops["export"].emissions_kg == 0.01 and ops["export"].methods == ["measured"]
    assert ops["verification"].emissions_kg == 0.0005
    assert ops["training"].emissions_kg == 0.875, "not counted twice"
    assert total(items).emissions_kg == total(before).emissions_kg + 0.0105
    assert _by(group(items, "version"))["chat-v1"] == 0.75 + 0.0105


def test_the_html_report_is_one_self_contained_page(env: Env) -> None:
    from model_garden.carbon.report import Row
    from model_garden.carbon.report_html import render

    rows = [Row(key="<chat>", operations=2, emissions_kg=0.5, training_kg=0.25, serving_kg=0.2)]
    page = render("model", rows, Row(key=None, operations=2, emissions_kg=0.5), "today")
    assert page.startswith("<!doctype html>") and "&lt;chat&gt;" in page and "<chat>" not in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<rect") == 3  # training, serving, and the 0.05 kg of other operations
    ran = env.run("carbon", "report", "--by", "model", "-o", "html")
    assert ran.exit_code == 0 and "<h1>Carbon report by model</h1>" in ran.stdout
