"""``mg carbon report|regions``: the aggregation on factories (each operation once, the groups add
up to the total exactly), and the command's formats on a store a real local run filled."""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
from typing import Any

import pytest

from model_garden.carbon.report import (
    DIMENSIONS,
    HistoryPoint,
    Record,
    group,
    parse_when,
    period_of,
    records,
    regions,
    split_serving,
    total,
    within,
)
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


# -- periods (issue 13, item 7) -----------------------------------------------------------------


def _at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("when", "period", "key"),
    [
        ("2026-11-27T23:59:59Z", "day", "2026-11-27"),
        ("2026-11-28T00:30:00+02:00", "day", "2026-11-27"),  # UTC, not the offset's day
        ("2026-11-27T10:00:00Z", "week", "2026-W48"),
        ("2026-12-31T10:00:00Z", "week", "2026-W53"),
        ("2027-01-01T10:00:00Z", "week", "2026-W53"),  # ISO week: the year of its Thursday
        ("2027-01-04T10:00:00Z", "week", "2027-W01"),
        ("2026-11-30T23:00:00Z", "month", "2026-11"),
        ("2026-11-30T23:00:00-02:00", "month", "2026-12"),
    ],
)
def test_a_record_falls_in_the_utc_period_of_its_end(when: str, period: str, key: str) -> None:
    assert period_of(_at(when), period) == key
    assert period_of(None, period) is None


def test_times_are_rfc3339_or_dates_and_errors_name_the_option() -> None:
    assert parse_when("2026-11-27", "--since") == _at("2026-11-27T00:00:00Z")
    assert parse_when("2026-11-27T12:30:00+01:00", "--until") == _at("2026-11-27T11:30:00Z")
    assert parse_when("2026-11-27T12:30:00Z", "--until") == _at("2026-11-27T12:30:00Z")
    with pytest.raises(ValueError, match="--since: '27/11/2026' is not an RFC 3339"):
        parse_when("27/11/2026", "--since")
    with pytest.raises(ValueError, match="--until: .* has no time zone"):
        parse_when("2026-11-27T12:30:00", "--until")
    with pytest.raises(ValueError, match="unknown period 'year'"):
        period_of(_at("2026-11-27T00:00:00Z"), "year")


NOW_ = _at("2026-11-27T12:00:00Z")


def _timed_objects() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    jobs, versions, deployments = _objects()
    jobs[0]["status"]["completionTime"] = "2026-10-03T08:00:00Z"  # tune: October
    versions[1]["metadata"]["creationTimestamp"] = "2026-11-02T09:00:00Z"  # gone's training
    return jobs, versions, deployments  # failed: still running (now); bot: live (now)


def test_by_period_each_record_goes_to_its_end_and_the_periods_add_up() -> None:
    items, _ = records(*_timed_objects(), now=NOW_)
    ends = {(r.operation, r.job, r.deployment): r.end for r in items}
    assert ends[("training", "tune", None)] == _at("2026-10-03T08:00:00Z")
    assert ends[("training", "gone", None)] == _at("2026-11-02T09:00:00Z")
    assert ends[("training", "failed", None)] == NOW_  # running: the report's time
    assert ends[("serving", None, "bot")] == NOW_  # live: its last update
    assert ends[("serving", "gone", "old")] is None  # a deleted deployment's: no time
    months = _by(group(items, "period", "month"))
    assert months == {"2026-10": 0.25, "2026-11": 0.5 + 0.125 + 0.75, None: 0.0625}
    assert [r.key for r in group(items, "period", "week")] == [
        "2026-W40",
        "2026-W45",
        "2026-W48",
        None,
    ]
    for period in ("day", "week", "month"):
        rows = group(items, "period", period)
        assert math.fsum(r.emissions_kg for r in rows) == total(items).emissions_kg


def test_since_and_until_keep_what_ends_between_and_leave_out_what_has_no_time() -> None:
    items, _ = records(*_timed_objects(), now=NOW_)
    november = within(items, _at("2026-11-01T00:00:00Z"), _at("2026-12-01T00:00:00Z"))
    assert {(r.operation, r.deployment or r.job) for r in november} == {
        ("training", "gone"),
        ("training", "failed"),
        ("serving", "bot"),
    }
    assert within(items, None, _at("2026-10-03T08:00:00Z")) == []  # until is exclusive
    (tune,) = within(items, _at("2026-10-03T08:00:00Z"), _at("2026-10-04T00:00:00Z"))
    assert tune.job == "tune"  # since is inclusive
    assert within(items, None, None) == items


def _series(*points: tuple[str, float, int]) -> list[HistoryPoint]:
    return [HistoryPoint(_at(t), kwh, kwh / 2, tokens) for t, kwh, tokens in points]


def test_serving_is_split_by_period_where_the_history_allows() -> None:
    served = Record("serving", 1.0, 0.5, tokens=100, deployment="bot", version="v", end=NOW_)
    twice = [
        Record("serving", 1.0, 0.5, tokens=10, deployment="two", version="a", end=NOW_),
        Record("serving", 1.0, 0.5, tokens=10, deployment="two", version="b", end=NOW_),
    ]
    history = {
        # two meters (a pod replaced): each series is cumulative on its own
        "bot": [
            _series(("2026-11-25T10:00:00Z", 0.1, 10), ("2026-11-25T20:00:00Z", 0.3, 30)),
            _series(("2026-11-26T10:00:00Z", 0.5, 50), ("2026-11-27T10:00:00Z", 0.7, 70)),
        ],
        "two": [_series(("2026-11-25T10:00:00Z", 0.1, 10))],
    }
    items = split_serving([served, *twice], history, "day")
    pieces = {r.end: r for r in items if r.deployment == "bot"}
    assert [(p.energy_kwh, p.emissions_kg, p.tokens) for p in pieces.values()] == [
        (pytest.approx(0.3), pytest.approx(0.15), 30),
        (pytest.approx(0.5), pytest.approx(0.25), 50),
        (pytest.approx(0.2), pytest.approx(0.1), 20),
    ]
    assert list(pieces) == [
        _at("2026-11-25T20:00:00Z"),
        _at("2026-11-26T10:00:00Z"),
        _at("2026-11-27T10:00:00Z"),
    ]
    assert math.fsum(p.emissions_kg for p in pieces.values()) == pytest.approx(0.5, abs=1e-15)
    assert sum(p.tokens for p in pieces.values()) == 100
    assert [r for r in items if r.deployment == "two"] == twice  # two versions: not split
    days = _by(group(items, "period", "day"))
    assert days["2026-11-26"] == pytest.approx(0.25)
    assert days["2026-11-27"] == pytest.approx(0.1 + 1.0)  # bot's last piece and "two" whole


def test_report_by_period_in_every_format(trained: Env) -> None:
    env = trained
    doc = json.loads(
        env.run("carbon", "report", "--by", "period", "--period", "day", "-o", "json").stdout
    )
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    assert doc["by"] == "period" and doc["period"] == "day"
    assert [r["key"] for r in doc["rows"]] == [today]  # the job ended today; its version made today
    assert doc["rows"][0]["emissions_kg"] == doc["total"]["emissions_kg"] > 0
    assert all(r["end"].startswith(today) for r in doc["records"])
    week = datetime.datetime.now(datetime.UTC).isocalendar()
    rows = list(
        csv.DictReader(
            io.StringIO(
                env.run(
                    "carbon", "report", "--by", "period", "--period", "week", "-o", "csv"
                ).stdout
            )
        )
    )
    assert [r["period"] for r in rows] == [f"{week[0]}-W{week[1]:02d}", "total"]
    table = env.run("carbon", "report", "--by", "period").stdout.splitlines()
    assert table[0].split()[0] == "PERIOD" and table[-2].split()[0] == today[:7]
    page = env.run("carbon", "report", "--by", "period", "-o", "html").stdout
    assert "<h1>Carbon report by period (month)</h1>" in page and today[:7] in page
    later = json.loads(env.run("carbon", "report", "--since", "2999-01-01", "-o", "json").stdout)
    assert later["rows"] == [] and later["total"]["operations"] == 0
    bad = env.run("carbon", "report", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since: 'yesterday' is not an RFC 3339" in one_line_error(bad)
