"""Live providers against a local HTTP server speaking each provider's documented format."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from model_garden.carbon import grid as grid_module
from model_garden.carbon.grid import Grid, GridConfig
from model_garden.carbon.providers import (
    G_PER_KWH_PER_LB_PER_MWH,
    ElectricityMaps,
    WattTime,
    read_secret,
)

KEY = "em-secret-token-123"
USER, PASSWORD = "wt-user", "wt-pass-456"
JWT = "eyJ.fake.jwt"

Reply = tuple[int, Any]  # status, JSON-able body or raw bytes


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeApi:
    """A provider API on 127.0.0.1: routes by path, every request recorded."""

    url: str = ""
    routes: dict[str, Callable[[Seen], Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    delay_s: float = 0.0

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            seen = Seen(parts.path, dict(parse_qsl(parts.query)), dict(self.headers.items()))
            fake.seen.append(seen)
            if fake.delay_s:
                time.sleep(fake.delay_s)
            route = fake.routes.get(parts.path)
            status, body = route(seen) if route else (404, {"error": "not found"})
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _tables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid_module, "codecarbon_mix", lambda: {})


# --- Electricity Maps ---------------------------------------------------------------------


def em_latest(seen: Seen) -> Reply:
    if seen.headers.get("auth-token") != KEY:
        return 401, {"message": "bad token"}
    return 200, {
        "zone": seen.query["zone"],
        "carbonIntensity": 38,
        "datetime": "2026-11-27T16:00:00.000Z",
        "updatedAt": "2026-11-27T16:41:12.003Z",
        "createdAt": "2026-11-24T16:44:50.621Z",
        "emissionFactorType": "lifecycle",
        "isEstimated": True,
        "estimationMethod": "TIME_SLICER_AVERAGE",
        "temporalGranularity": "hourly",
    }


def em_forecast(seen: Seen) -> Reply:
    return 200, {
        "zone": seen.query["zone"],
        "forecast": [
            {"carbonIntensity": 40 + h, "datetime": f"2026-11-27T{16 + h:02d}:00:00.000Z"}
            for h in range(6)
        ],
        "updatedAt": "2026-11-27T16:41:12.003Z",
    }


def em(api: FakeApi, **kwargs: Any) -> ElectricityMaps:
    return ElectricityMaps(KEY, api.url, **kwargs)


def test_electricitymaps_latest(api: FakeApi) -> None:
    api.routes["/v3/carbon-intensity/latest"] = em_latest
    reading = em(api).latest("FR")
    assert reading is not None
    assert (reading.provider, reading.zone, reading.g_per_kwh) == ("electricitymaps", "FR", 38.0)
    assert reading.time == datetime(2026, 11, 27, 16, tzinfo=UTC)
    assert api.seen[0].query == {"zone": "FR"}


def test_electricitymaps_is_cached_per_zone(api: FakeApi) -> None:
    api.routes["/v3/carbon-intensity/latest"] = em_latest
    now = [0.0]
    provider = em(api, cache_s=300, clock=lambda: now[0])
    first = provider.latest("FR")
    assert provider.latest("FR") == first
    assert len(api.seen) == 1  # the second answer came from the cache
    provider.latest("DE")
    assert [s.query["zone"] for s in api.seen] == ["FR", "DE"]
    now[0] = 301.0  # past the TTL: asked again
    provider.latest("FR")
    assert len(api.seen) == 3


def test_electricitymaps_forecast(api: FakeApi) -> None:
    api.routes["/v3/carbon-intensity/forecast"] = em_forecast
    points = em(api).forecast("FR", 3)
    assert points == [(datetime(2026, 11, 27, 16 + h, tzinfo=UTC), 40.0 + h) for h in range(3)]
    assert api.seen[0].query == {"zone": "FR", "horizonHours": "3"}


BAD_ANSWERS = {
    "500": lambda s: (500, {"message": "internal"}),
    "401": lambda s: (401, {"message": "unauthorised"}),
    "malformed JSON": lambda s: (200, b'{"zone": "FR", "carbonIntensity": 3'),
    "missing carbonIntensity": lambda s: (200, {"zone": "FR", "datetime": "2026-11-27T16:00Z"}),
    "null carbonIntensity": lambda s: (
        200,
        {"zone": "FR", "carbonIntensity": None, "datetime": "2026-11-27T16:00Z"},
    ),
    "missing datetime": lambda s: (200, {"zone": "FR", "carbonIntensity": 38}),
    "not an object": lambda s: (200, [1, 2]),
}


@pytest.mark.parametrize("answer", list(BAD_ANSWERS), ids=list(BAD_ANSWERS))
def test_electricitymaps_failures_fall_back_to_the_table_with_a_warning(
    api: FakeApi, answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    api.routes["/v3/carbon-intensity/latest"] = BAD_ANSWERS[answer]
    api.routes["/v3/carbon-intensity/forecast"] = BAD_ANSWERS[answer]
    grid = Grid(GridConfig(), provider=em(api))
    got = grid.intensity(None, "aws:eu-west-3")
    assert (got.source, got.g_per_kwh) == ("aws-table:Ember FRA 2023", 56.0)
    assert em(api).forecast("FR", 3) == []
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warnings and "using the table instead" in warnings[0].getMessage()
    assert KEY not in caplog.text


def test_electricitymaps_timeout_falls_back_and_is_not_retried_at_once(
    api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.routes["/v3/carbon-intensity/latest"] = em_latest
    api.delay_s = 1.0
    provider = em(api, timeout_s=0.2)
    grid = Grid(GridConfig(), provider=provider)
    started = time.monotonic()
    got = grid.intensity("FRA")
    assert time.monotonic() - started < 0.9
    assert got.source == "country-table:Ember 2023"
    assert "timed out" in caplog.text and KEY not in caplog.text
    assert grid.intensity("FRA").source == "country-table:Ember 2023"
    assert len(api.seen) == 1  # the failure is remembered for failure_cache_s


def test_electricitymaps_refused_connection_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    provider = ElectricityMaps(KEY, "http://127.0.0.1:9", timeout_s=0.5)
    assert provider.latest("FR") is None
    assert "ConnectError" in caplog.text


def test_a_configured_provider_answers_before_the_tables(api: FakeApi, tmp_path: Path) -> None:
    api.routes["/v3/carbon-intensity/latest"] = em_latest
    (tmp_path / "key").write_text(KEY + "\n", encoding="utf-8")
    config = GridConfig.model_validate(
        {
            "overrides": {"DEU": 333},
            "provider": {
                "name": "electricitymaps",
                "url": api.url,
                "apiKeyFile": str(tmp_path / "key"),
                "zones": {"aws:us-east-1": "US-MIDA-PJM"},
            },
        }
    )
    grid = Grid(config)
    got = grid.intensity(None, "eu-west-3")
    assert (got.source, got.g_per_kwh, got.country, got.region, got.kind) == (
        "electricitymaps:FR",
        38.0,
        "FRA",
        "aws:eu-west-3",
        "live",
    )
    assert got.time == "2026-11-27T16:00:00+00:00"
    assert grid.intensity(None, "us-east-1").source == "electricitymaps:US-MIDA-PJM"
    # an override wins, and the provider is not even asked
    assert grid.intensity("DEU").source == "override:DEU"
    assert [s.query["zone"] for s in api.seen] == ["FR", "US-MIDA-PJM"]


# --- WattTime -----------------------------------------------------------------------------


def wt_login(seen: Seen) -> Reply:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if seen.headers.get("Authorization") != expected:
        return 403, {"error": "bad credentials"}
    return 200, {"token": JWT}


def wt_forecast(seen: Seen, units: str = "lbs_co2_per_mwh") -> Reply:
    if seen.headers.get("Authorization") != f"Bearer {JWT}":
        return 401, {"error": "token"}
    hours = int(seen.query.get("horizon_hours", "24"))
    points = [
        {"point_time": f"2026-11-27T16:{m:02d}:00+00:00", "value": 1000.0 + m, "version": "3.2"}
        for m in range(0, 60, 5)
    ][: max(1, hours * 12)]
    return 200, {
        "data": points,
        "meta": {
            "data_point_period_seconds": 300,
            "region": seen.query["region"],
            "signal_type": seen.query["signal_type"],
            "units": units,
            "warnings": [],
            "model": {"date": "2026-11-01", "type": "binned_regression"},
            "generated_at_period_seconds": 300,
            "generated_at": "2026-11-27T16:00:00+00:00",
        },
    }


def wt(api: FakeApi, **kwargs: Any) -> WattTime:
    return WattTime(USER, PASSWORD, api.url, **kwargs)


def test_watttime_logs_in_and_converts_lbs_per_mwh_to_grams_per_kwh(api: FakeApi) -> None:
    api.routes["/login"] = wt_login
    api.routes["/v3/forecast"] = wt_forecast
    provider = wt(api)
    reading = provider.latest("CAISO_NORTH")
    assert reading is not None
    assert reading.g_per_kwh == pytest.approx(1000.0 * 0.453592)
    assert G_PER_KWH_PER_LB_PER_MWH == 0.453592
    assert (reading.zone, reading.signal) == ("CAISO_NORTH", "marginal")
    assert reading.time == datetime(2026, 11, 27, 16, tzinfo=UTC)
    assert api.paths() == ["/login", "/v3/forecast"]
    assert api.seen[1].query == {
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "horizon_hours": "0",
    }
    provider.latest("PJM_DC")  # the token is reused
    assert api.paths() == ["/login", "/v3/forecast", "/v3/forecast"]


def test_watttime_forecast(api: FakeApi) -> None:
    api.routes["/login"] = wt_login
    api.routes["/v3/forecast"] = wt_forecast
    points = wt(api).forecast("CAISO_NORTH", 1)
    assert len(points) == 12
    when, g_per_kwh = points[1]
    assert when == datetime(2026, 11, 27, 16, 5, tzinfo=UTC)
    assert g_per_kwh == pytest.approx(1005.0 * 0.453592)


def test_watttime_logs_in_again_when_the_token_is_refused(api: FakeApi) -> None:
    tokens = iter(["stale", JWT])
    api.routes["/login"] = lambda s: (200, {"token": next(tokens)})
    api.routes["/v3/forecast"] = wt_forecast
    assert wt(api).latest("CAISO_NORTH") is not None
    assert api.paths() == ["/login", "/v3/forecast", "/login", "/v3/forecast"]


@pytest.mark.parametrize(
    ("login", "forecast", "reason"),
    [
        (lambda s: (403, {"error": "no"}), wt_forecast, "HTTP 403"),
        (lambda s: (200, {"nope": 1}), wt_forecast, "no token"),
        (wt_login, lambda s: wt_forecast(s, units="percentile"), "unexpected units"),
        (wt_login, lambda s: (500, b"oops"), "HTTP 500"),
        (wt_login, lambda s: (200, b"<html>"), "not JSON"),
        (wt_login, lambda s: (200, {"data": [], "meta": {"units": "lbs_co2_per_mwh"}}), "empty"),
        (
            wt_login,
            lambda s: (
                200,
                {
                    "data": [{"point_time": "2026-11-27T16:00Z"}],
                    "meta": {"units": "lbs_co2_per_mwh"},
                },
            ),
            "'value'",
        ),
    ],
    ids=[
        "login refused",
        "no token",
        "percentile units",
        "500",
        "malformed",
        "no points",
        "no value",
    ],
)
def test_watttime_failures_fall_back_with_a_warning(
    api: FakeApi,
    login: Callable[[Seen], Reply],
    forecast: Callable[[Seen], Reply],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.routes["/login"] = login
    api.routes["/v3/forecast"] = forecast
    config = GridConfig.model_validate(
        {"provider": {"name": "watttime", "zones": {"USA": "CAISO_NORTH"}}}
    )
    grid = Grid(config, provider=wt(api))
    got = grid.intensity("USA", "california")
    assert got.source == "subnational-table:EPA eGRID2023 CA 2023"
    assert reason in caplog.text
    assert PASSWORD not in caplog.text and JWT not in caplog.text


def test_watttime_needs_a_configured_zone(api: FakeApi) -> None:
    grid = Grid(GridConfig.model_validate({"provider": {"name": "watttime", "url": api.url}}))
    assert grid.intensity("USA").source == "country-table:Ember 2023"
    assert api.seen == []


def test_secrets_come_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("  from-file\n", encoding="utf-8")
    monkeypatch.setenv("MG_TEST_TOKEN", "from-env")
    assert read_secret(str(tmp_path / "token"), "MG_TEST_TOKEN") == "from-file"
    assert read_secret(str(tmp_path / "missing"), "MG_TEST_TOKEN") == "from-env"
    monkeypatch.delenv("MG_TEST_TOKEN")
    assert read_secret(None, "MG_TEST_TOKEN") is None


def test_grid_forecast_goes_to_the_zone_of_the_place(api: FakeApi) -> None:
    api.routes["/v3/carbon-intensity/forecast"] = em_forecast
    grid = Grid(GridConfig(), provider=em(api))
    points = grid.forecast(None, "gcp:europe-west1", hours=2)
    assert [g for _, g in points] == [40.0, 41.0]
    assert api.seen[0].query["zone"] == "BE"
    assert Grid().forecast("FRA", hours=2) == []
