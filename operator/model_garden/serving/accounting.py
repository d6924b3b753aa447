"""The meter's bookkeeping: cumulative energy, emissions and tokens, idle vs active, sliding window.

Pure (no I/O but the state file) so the attribution is unit-tested on built samples.

Attribution: energy is read every tick. A tick is *active* when vLLM finished tokens or requests
during it, or had requests running or waiting at either end of it; otherwise it is *idle*. The
whole energy of an active tick (including the baseline drawn meanwhile) goes to the tokens served
in it; idle ticks' energy is reported apart and never enters J/token, so a model that waits all
night does not look expensive per token the next morning. Emissions count both (the pod emits
either way).

Per adapter (adapter_carbon.py): an active tick in which vLLM listed no adapter, or one, gives
its tokens, energy and emissions to the base model or that adapter; a tick that listed several
goes to a shared bucket (``unattributed``). The parts add up: the adapters' (base included) and
the shared bucket's energy is the active energy, their tokens all tokens.

Restarts: vLLM's counters start from zero when it restarts. The state keeps the last counter
values seen and vLLM's ``process_start_time_seconds``; a different start time, or a counter that
went down, means a restart, and the new value counts in full. The state file is rewritten
atomically, so neither a vLLM restart nor a meter restart resets the totals.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from model_garden.api.common import CarbonMethod
from model_garden.api.contracts import AdapterCarbon, ServingCarbon
from model_garden.carbon.grid import JOULES_PER_KWH

from .adapter_carbon import (
    BASE_FALLBACK,
    LORA_INFO,
    MODEL_LABEL,
    AdapterTotals,
    LoraSeries,
    adapters_seen,
    lora_series,
    newest,
    tick_owner,
)
from .promtext import iter_samples

PROMPT = "vllm:prompt_tokens_total"
GENERATION = "vllm:generation_tokens_total"
REQUESTS = "vllm:request_success_total"
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
START_TIME = "process_start_time_seconds"
VLLM_SERIES = (PROMPT, GENERATION, REQUESTS, RUNNING, WAITING, START_TIME)
SCRAPED_SERIES = (*VLLM_SERIES, LORA_INFO)


@dataclass(frozen=True)
class VllmSnapshot:
    """vLLM's counters at one scrape (summed over models and labels)."""

    prompt_tokens: float = 0.0
    generation_tokens: float = 0.0
    requests: float = 0.0
    in_flight: float = 0.0
    start_time: float | None = None
    lora: tuple[LoraSeries, ...] = ()
    """``vllm:lora_requests_info``'s series (empty with LoRA off)."""
    model_name: str | None = None
    """The base model's served name (the counters' ``model_name`` label)."""

    @classmethod
    def from_totals(cls, totals: dict[str, float]) -> VllmSnapshot:
        return cls(
            prompt_tokens=totals.get(PROMPT, 0.0),
            generation_tokens=totals.get(GENERATION, 0.0),
            requests=totals.get(REQUESTS, 0.0),
            in_flight=totals.get(RUNNING, 0.0) + totals.get(WAITING, 0.0),
            start_time=totals.get(START_TIME),
        )

    @classmethod
    def from_page(cls, text: str) -> VllmSnapshot:
        """A snapshot of a /metrics page: the counters summed, the LoRA gauge's series kept."""
        totals: dict[str, float] = {}
        lora: list[tuple[dict[str, str], float]] = []
        model_name = None
        for name, labels, value in iter_samples(text, SCRAPED_SERIES):
            if name == LORA_INFO:
                lora.append((labels, value))
                continue
            totals[name] = totals.get(name, 0.0) + value
            if model_name is None and name == GENERATION:
                model_name = labels.get(MODEL_LABEL)
        snap = cls.from_totals(totals)
        return cls(
            snap.prompt_tokens,
            snap.generation_tokens,
            snap.requests,
            snap.in_flight,
            snap.start_time,
            lora_series(lora),
            model_name,
        )


class MeterState(BaseModel):
    """What survives restarts (the state file)."""

    energy_joules: float = 0.0
    active_energy_joules: float = 0.0
    idle_energy_joules: float = 0.0
    emissions_grams: float = 0.0
    active_emissions_grams: float = 0.0
    idle_emissions_grams: float = 0.0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    requests: int = 0
    component_joules: dict[str, float] = Field(default_factory=dict)
    adapters: dict[str, AdapterTotals] = Field(default_factory=dict)
    """Active figures by adapter (the base model under its served name)."""
    unattributed: AdapterTotals = Field(default_factory=AdapterTotals)
    """Active figures of ticks that mixed adapters (the shared bucket)."""
    base_model: str | None = None
    lora_seen_at: float | None = None
    """The newest ``vllm:lora_requests_info`` value at the last scrape (vLLM's clock)."""
    lora_at_last_scrape: list[str] = Field(default_factory=list)
    """Adapters the newest series listed at the last scrape."""
    last_prompt: float = 0.0
    last_generation: float = 0.0
    last_requests: float = 0.0
    vllm_start_time: float | None = None
    vllm_restarts: int = 0
    updated_at: float = 0.0

    @model_validator(mode="after")
    def _split_old_files(self) -> MeterState:
        """State files written before the idle split: idle is what active does not cover."""
        if self.idle_emissions_grams == 0.0 and self.emissions_grams > self.active_emissions_grams:
            self.idle_emissions_grams = self.emissions_grams - self.active_emissions_grams
        return self


def counter_delta(previous: float, current: float, restarted: bool) -> float:
    """How much a counter grew; after a restart (or a counter going down) all of it is new."""
    if restarted or current < previous:
        return current
    return current - previous


@dataclass
class _WindowEntry:
    t: float
    active_joules: float
    active_grams: float
    tokens: int


class Accountant:
    """Turns (energy, vLLM snapshot) ticks into cumulative totals and a sliding window."""

    def __init__(
        self,
        intensity_g_per_kwh: float,
        country: str | None = None,
        region: str | None = None,
        window_s: float = 300.0,
        grid_source: str | None = None,
        grid_time: str | None = None,
        state: MeterState | None = None,
        state_path: Path | None = None,
        history_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.intensity = intensity_g_per_kwh
        self.country = country
        self.region = region
        self.grid_source, self.grid_time = grid_source, grid_time
        self.window_s = window_s
        self.state = state or MeterState()
        self.state_path = state_path
        self.method = CarbonMethod.ESTIMATED
        self.component_methods: dict[str, CarbonMethod] = {}
        self.component_sources: dict[str, str] = {}
        self._window: deque[_WindowEntry] = deque()
        self._last_in_flight = 0.0
        self._last_energy: dict[str, float] | None = None
        self.vllm_up = False
        self.history_every_s = history_every_s
        self._clock = clock
        self._history_at: float | None = None
        self._history_tokens = 0

    @classmethod
    def resume(cls, state_path: Path, **kwargs: object) -> Accountant:
        """An accountant continuing from ``state_path`` (fresh when missing or unreadable)."""
        state = MeterState()
        if state_path.exists():
            try:
                state = MeterState.model_validate(json.loads(state_path.read_text()))
            except (ValueError, OSError):
                state = MeterState()  # a corrupt file must not stop the meter; totals restart
        return cls(state=state, state_path=state_path, **kwargs)  # type: ignore[arg-type]

    def tick(
        self,
        energy: dict[str, float],
        snapshot: VllmSnapshot | None,
        now: float | None = None,
    ) -> None:
        """Account one interval: ``energy`` holds each component's cumulative joules (source-local,
        starting anywhere), ``snapshot`` vLLM's counters or None when it did not answer."""
        now = time.time() if now is None else now
        s = self.state
        if self._last_energy is None:
            joules = 0.0  # the first reading only sets the origin
        else:
            joules = 0.0
            for component, value in energy.items():
                delta = max(0.0, value - self._last_energy.get(component, value))
                s.component_joules[component] = s.component_joules.get(component, 0.0) + delta
                joules += delta
        self._last_energy = dict(energy)

        tokens = 0
        active = self._last_in_flight > 0
        self.vllm_up = snapshot is not None
        if snapshot is not None:
            restarted = (
                snapshot.start_time is not None
                and s.vllm_start_time is not None
                and abs(snapshot.start_time - s.vllm_start_time) > 1e-3
            )
            if restarted:
                s.vllm_restarts += 1
            d_prompt = counter_delta(s.last_prompt, snapshot.prompt_tokens, restarted)
            d_gen = counter_delta(s.last_generation, snapshot.generation_tokens, restarted)
            d_req = counter_delta(s.last_requests, snapshot.requests, restarted)
            s.prompt_tokens += round(d_prompt)
            s.generation_tokens += round(d_gen)
            s.requests += round(d_req)
            s.last_prompt = snapshot.prompt_tokens
            s.last_generation = snapshot.generation_tokens
            s.last_requests = snapshot.requests
            s.vllm_start_time = snapshot.start_time
            tokens = round(d_prompt) + round(d_gen)
            active = active or tokens > 0 or d_req > 0 or snapshot.in_flight > 0
            self._last_in_flight = snapshot.in_flight
            seen = adapters_seen(snapshot.lora, s.lora_seen_at, s.lora_at_last_scrape)
            s.base_model = snapshot.model_name or s.base_model
            last = newest(snapshot.lora)
            if last is not None:
                s.lora_seen_at = last.at
                s.lora_at_last_scrape = sorted(last.adapters)
        else:
            self._last_in_flight = 0.0
            seen = frozenset(s.lora_at_last_scrape)

        grams = joules / JOULES_PER_KWH * self.intensity
        s.energy_joules += joules
        s.emissions_grams += grams
        if active:
            s.active_energy_joules += joules
            s.active_emissions_grams += grams
            owner = tick_owner(seen, s.base_model or BASE_FALLBACK)
            bucket = (
                s.unattributed if owner is None else s.adapters.setdefault(owner, AdapterTotals())
            )
            bucket.add(tokens, joules, grams)
        else:
            s.idle_energy_joules += joules
            s.idle_emissions_grams += grams
        s.updated_at = now
        self._window.append(
            _WindowEntry(now, joules if active else 0.0, grams if active else 0.0, tokens)
        )
        while self._window and self._window[0].t < now - self.window_s:
            self._window.popleft()

    # -- figures ---------------------------------------------------------------------------

    @property
    def tokens(self) -> int:
        return self.state.prompt_tokens + self.state.generation_tokens

    def window_totals(self) -> tuple[float, float, int]:
        """(active J, active g CO2e, tokens) over the sliding window."""
        return (
            sum(e.active_joules for e in self._window),
            sum(e.active_grams for e in self._window),
            sum(e.tokens for e in self._window),
        )

    def window_figures(self) -> tuple[float | None, float | None, int]:
        """(J/token, g CO2e per 1k tokens, tokens) over the sliding window; None without tokens."""
        joules, grams, tokens = self.window_totals()
        if tokens == 0:
            return None, None, 0
        return joules / tokens, grams * 1000 / tokens, tokens

    def carbon(self) -> ServingCarbon:
        """The ServingCarbon document: cumulative totals split active/idle, and the window.

        Totals are written as the sum of their parts, so ``energy = active + idle`` holds exactly
        on the wire and the operator's sums of deltas add up to the meter's figures.
        """
        s = self.state
        w_joules, w_grams, w_tokens = self.window_totals()
        per_token, per_1k, _ = self.window_figures()
        return ServingCarbon(
            energy_joules=s.active_energy_joules + s.idle_energy_joules,
            active_energy_joules=s.active_energy_joules,
            idle_energy_joules=s.idle_energy_joules,
            emissions_grams=s.active_emissions_grams + s.idle_emissions_grams,
            active_emissions_grams=s.active_emissions_grams,
            idle_emissions_grams=s.idle_emissions_grams,
            prompt_tokens=s.prompt_tokens,
            generation_tokens=s.generation_tokens,
            requests=s.requests,
            window_seconds=self.window_s,
            window_active_energy_joules=w_joules,
            window_active_emissions_grams=w_grams,
            window_tokens=w_tokens,
            joules_per_token=per_token,
            grams_per_1k_tokens=per_1k,
            grid_intensity_g_per_kwh=self.intensity,
            country=self.country,
            region=self.region,
            grid_source=self.grid_source,
            grid_time=self.grid_time,
            method=self.method,
            component_sources=dict(self.component_sources),
            base_model=s.base_model or (BASE_FALLBACK if BASE_FALLBACK in s.adapters else None),
            by_adapter={
                name: AdapterCarbon(
                    tokens=t.tokens,
                    energy_joules=t.energy_joules,
                    emissions_grams=t.emissions_grams,
                )
                for name, t in sorted(s.adapters.items())
            },
            unattributed_tokens=s.unattributed.tokens,
            unattributed_energy_joules=s.unattributed.energy_joules,
            unattributed_emissions_grams=s.unattributed.emissions_grams,
        )

    def save(self) -> None:
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(f".{self.state_path.name}.tmp")
        tmp.write_text(self.state.model_dump_json())
        tmp.replace(self.state_path)
        self.append_history()

    @property
    def history_path(self) -> Path | None:
        """``<state>.history.jsonl`` beside the state file (None without a state file)."""
        if self.state_path is None:
            return None
        return self.state_path.with_name(f"{self.state_path.stem}.history.jsonl")

    def append_history(self) -> None:
        """Append one line of the totals, at most every ``history_every_s`` (the read API's
        serving history when no Prometheus keeps the series)."""
        path, now = self.history_path, self._clock()
        if path is None:
            return
        if self._history_at is not None and now - self._history_at < self.history_every_s:
            return
        c = self.carbon()
        tokens = c.prompt_tokens + c.generation_tokens
        rate = None
        if self._history_at is not None and now > self._history_at:
            rate = max(tokens - self._history_tokens, 0) / (now - self._history_at)
        line = {
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "energyKwh": c.energy_joules / JOULES_PER_KWH,
            "emissionsKg": c.emissions_grams / 1000.0,
            "tokens": tokens,
            "tokensPerSecond": rate,
            "joulesPerToken": c.joules_per_token,
            "gramsPer1kTokens": c.grams_per_1k_tokens,
        }
        try:
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
        except OSError:  # history is a convenience: the totals file is what counts
            return
        self._history_at, self._history_tokens = now, tokens
