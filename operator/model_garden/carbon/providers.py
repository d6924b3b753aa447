"""Live grid-intensity providers: Electricity Maps and WattTime, cached, with timeouts.

A provider answers :meth:`LiveProvider.latest` with a :class:`LiveReading` or None, and
:meth:`LiveProvider.forecast` with (time, g/kWh) points or ``[]``: a failure (timeout, refused
connection, non-200, a body that is not JSON or lacks a field) is one warning log line and the
caller falls back to the tables, never an exception. Readings are cached per zone for
``cache_s``; a failure is remembered for ``failure_cache_s`` so a provider that is down is not
asked on every call. Credentials come from a file (a mounted Secret) or an environment variable
and never reach a log line, an exception message or a result.

- Electricity Maps v3: ``GET /v3/carbon-intensity/latest?zone=FR`` and
  ``/v3/carbon-intensity/forecast?zone=FR``, header ``auth-token``; values are the zone's
  average (lifecycle) intensity in g CO2e/kWh.
- WattTime v3: ``GET /login`` with basic auth returns a bearer token (valid 30 minutes);
  ``GET /v3/forecast?region=CAISO_NORTH&signal_type=co2_moer`` returns the marginal operating
  emissions rate in lbs CO2/MWh (1 lb/MWh = 0.453592 g/kWh). The current value is the first
  point of the forecast: ``/v3/signal-index`` is a 0-100 percentile, not an intensity.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from .regions import alpha2

log = logging.getLogger(__name__)

G_PER_KWH_PER_LB_PER_MWH = 0.453592
WATTTIME_TOKEN_S = 25 * 60
"""WattTime tokens last 30 minutes; renew a little before."""


@dataclass(frozen=True)
class LiveReading:
    """One live intensity: what the provider said, for which zone and which time."""

    provider: str
    zone: str
    g_per_kwh: float
    time: datetime
    """The time the value refers to (not when it was fetched)."""
    signal: str = "average"
    """``average`` (Electricity Maps) or ``marginal`` (WattTime MOER)."""


ForecastPoint = tuple[datetime, float]


class LiveProvider(Protocol):
    name: str

    def latest(self, zone: str) -> LiveReading | None: ...

    def forecast(self, zone: str, hours: int) -> list[ForecastPoint]: ...

    def default_zone(self, country: str | None) -> str | None: ...


def read_secret(file: str | None = None, env: str | None = None) -> str | None:
    """A credential from a file (a mounted Secret, stripped) or else an environment variable."""
    if file:
        path = Path(file)
        if path.is_file():
            value = path.read_text(encoding="utf-8").strip()
            if value:
                return value
    if env:
        return os.environ.get(env) or None
    return None


class ProviderError(Exception):
    """Why a provider call failed; the message never holds a credential."""


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ProviderError(f"missing or non-string {field!r}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ProviderError(f"{field!r} is not an ISO time: {value[:40]!r}") from None


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError(f"missing or non-numeric {field!r}")
    return float(value)


class _HttpProvider:
    """Shared plumbing: one httpx client, a per-key cache, failures logged once per call."""

    name = "provider"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        cache_s: float = 300.0,
        failure_cache_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache_s = cache_s
        self.failure_cache_s = failure_cache_s
        self._clock = clock
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}

    def close(self) -> None:
        self._client.close()

    def _get(
        self, path: str, params: dict[str, str], headers: dict[str, str], auth: Any = None
    ) -> Any:
        try:
            response = self._client.get(
                f"{self.base_url}{path}", params=params, headers=headers, auth=auth
            )
        except httpx.TimeoutException:
            raise ProviderError(f"GET {path}: timed out") from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"GET {path}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise ProviderError(f"GET {path}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise ProviderError(f"GET {path}: the body is not JSON") from None

    def _cached(self, key: tuple[str, ...], fetch: Callable[[], Any], empty: Any) -> Any:
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            value = fetch()
        except ProviderError as exc:
            log.warning(
                "grid intensity provider %s, zone %s: %s; using the table instead",
                self.name,
                key[1],
                exc,
            )
            self._cache[key] = (now + self.failure_cache_s, empty)
            return empty
        self._cache[key] = (now + self.cache_s, value)
        return value

    def latest(self, zone: str) -> LiveReading | None:
        value: LiveReading | None = self._cached(("latest", zone), lambda: self._latest(zone), None)
        return value

    def forecast(self, zone: str, hours: int) -> list[ForecastPoint]:
        points: list[ForecastPoint] = self._cached(
            ("forecast", zone, str(hours)), lambda: self._forecast(zone, hours), []
        )
        return points

    def _latest(self, zone: str) -> LiveReading:
        raise NotImplementedError

    def _forecast(self, zone: str, hours: int) -> list[ForecastPoint]:
        raise NotImplementedError


def _within(points: list[ForecastPoint], hours: int) -> list[ForecastPoint]:
    if not points:
        return points
    end = points[0][0] + timedelta(hours=hours)
    return [p for p in points if p[0] < end]


class ElectricityMaps(_HttpProvider):
    """Electricity Maps API v3 (zones are ``FR``, ``DE``, ``US-CAL-CISO``, ...)."""

    name = "electricitymaps"

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url or "https://api.electricitymaps.com", **kwargs)
        self._headers = {"auth-token": api_key} if api_key else {}

    def default_zone(self, country: str | None) -> str | None:
        return alpha2(country)

    def _latest(self, zone: str) -> LiveReading:
        body = self._get("/v3/carbon-intensity/latest", {"zone": zone}, self._headers)
        if not isinstance(body, dict):
            raise ProviderError("the body is not a JSON object")
        return LiveReading(
            provider=self.name,
            zone=str(body.get("zone") or zone),
            g_per_kwh=_number(body.get("carbonIntensity"), "carbonIntensity"),
            time=_time(body.get("datetime"), "datetime"),
        )

    def _forecast(self, zone: str, hours: int) -> list[ForecastPoint]:
        body = self._get(
            "/v3/carbon-intensity/forecast",
            {"zone": zone, "horizonHours": str(hours)},
            self._headers,
        )
        items = body.get("forecast") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ProviderError("missing 'forecast' list")
        points = [
            (_time(p.get("datetime"), "datetime"), _number(p.get("carbonIntensity"), "value"))
            for p in items
            if isinstance(p, dict)
        ]
        return _within(sorted(points), hours)


class WattTime(_HttpProvider):
    """WattTime API v3 (regions are balancing areas such as ``CAISO_NORTH``); MOER values."""

    name = "watttime"

    def __init__(
        self,
        username: str | None,
        password: str | None,
        base_url: str | None = None,
        signal_type: str = "co2_moer",
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url or "https://api.watttime.org", **kwargs)
        self._credentials = (username or "", password or "")
        self.signal_type = signal_type
        self._token: tuple[float, str] | None = None

    def default_zone(self, country: str | None) -> str | None:
        return None  # WattTime regions are balancing areas: configure zones explicitly

    def _login(self) -> str:
        now = self._clock()
        if self._token and self._token[0] > now:
            return self._token[1]
        body = self._get("/login", {}, {}, auth=self._credentials)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderError("GET /login: no token in the answer")
        self._token = (now + WATTTIME_TOKEN_S, token)
        return token

    def _signal(self, path: str, params: dict[str, str]) -> Any:
        headers = {"Authorization": f"Bearer {self._login()}"}
        try:
            return self._get(path, params, headers)
        except ProviderError as exc:
            if "HTTP 401" not in str(exc):
                raise
            self._token = None  # expired early: log in again, once
            return self._get(path, params, {"Authorization": f"Bearer {self._login()}"})

    def _moer(self, zone: str, hours: int) -> list[ForecastPoint]:
        body = self._signal(
            "/v3/forecast",
            {"region": zone, "signal_type": self.signal_type, "horizon_hours": str(hours)},
        )
        if not isinstance(body, dict):
            raise ProviderError("the body is not a JSON object")
        meta, data = body.get("meta"), body.get("data")
        units = meta.get("units") if isinstance(meta, dict) else None
        if units != "lbs_co2_per_mwh":
            raise ProviderError(f"unexpected units {units!r} (want lbs_co2_per_mwh)")
        if not isinstance(data, list) or not data:
            raise ProviderError("missing or empty 'data' list")
        points = [
            (
                _time(p.get("point_time"), "point_time"),
                _number(p.get("value"), "value") * G_PER_KWH_PER_LB_PER_MWH,
            )
            for p in data
            if isinstance(p, dict)
        ]
        if not points:
            raise ProviderError("no data points")
        return sorted(points)

    def _latest(self, zone: str) -> LiveReading:
        when, value = self._moer(zone, 0)[0]
        return LiveReading(self.name, zone, value, when, signal="marginal")

    def _forecast(self, zone: str, hours: int) -> list[ForecastPoint]:
        return _within(self._moer(zone, hours), hours)
