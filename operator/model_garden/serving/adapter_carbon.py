"""Which LoRA adapter a meter tick belongs to, from vLLM's ``vllm:lora_requests_info`` gauge.

vLLM labels its token counters with the base model only. With LoRA on it also exports
``vllm:lora_requests_info{running_lora_adapters="a,b", waiting_lora_adapters="c", max_lora="N"}``:
after every engine step it sets the series of the current label combination to the current time
(vLLM's ``set_to_current_time``), and never removes old combinations. So the page holds one
series per combination ever seen, valued with the last time it was current: the combinations
whose value is newer than the previous scrape's newest are every state the engine went through
since that scrape, one per step. The labels name adapters, not counts (vLLM joins the keys of
its per-adapter counts), so a tick that mixes adapters cannot be split by requests: it goes to a
*shared* bucket, reported apart.

What vLLM does not list, and so what this cannot see (docs/carbon.md, "Per adapter"):

- the base model: requests to it are never listed, so a tick with no adapter listed is the
  base's, and base-model requests that run in a tick where one adapter is listed are counted to
  that adapter;
- a request that finishes in the engine step that first schedules it (one generated token): its
  adapter is added and removed before the gauge is set.

Pure functions on parsed samples, so every rule is table-tested on built pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, Field

LORA_INFO = "vllm:lora_requests_info"
RUNNING_LABEL = "running_lora_adapters"
WAITING_LABEL = "waiting_lora_adapters"
MODEL_LABEL = "model_name"
BASE_FALLBACK = "base"
"""The base model's key when vLLM's counters carry no ``model_name`` label (never seen in 0.32)."""


@dataclass(frozen=True)
class LoraSeries:
    """One label combination of ``vllm:lora_requests_info``."""

    adapters: frozenset[str]
    """Adapters with requests running or waiting in that state."""
    at: float
    """vLLM's clock (s) when this combination was last current."""


def _names(label: str) -> frozenset[str]:
    return frozenset(name for name in label.split(",") if name)


def lora_series(samples: Iterable[tuple[dict[str, str], float]]) -> tuple[LoraSeries, ...]:
    """The gauge's series from (labels, value) samples, newest first."""
    series = [
        LoraSeries(_names(labels.get(RUNNING_LABEL, "")) | _names(labels.get(WAITING_LABEL, "")), v)
        for labels, v in samples
    ]
    return tuple(sorted(series, key=lambda s: s.at, reverse=True))


def newest(series: Iterable[LoraSeries]) -> LoraSeries | None:
    """The engine's state at its last step (None: LoRA off, or no step yet)."""
    return max(series, key=lambda s: s.at, default=None)


def adapters_seen(
    series: Iterable[LoraSeries], since: float | None, at_start: Iterable[str]
) -> frozenset[str]:
    """Adapters that had requests at some point of a tick.

    ``since`` is the newest value at the previous scrape (None at the first scrape: every series
    counts, since the counters' first delta covers vLLM's whole life); ``at_start`` the adapters
    listed by the newest series then, whose requests may have finished in this tick's first step
    (that step's series no longer lists them).
    """
    seen = set(at_start)
    for s in series:
        if since is None or s.at > since:
            seen |= s.adapters
    return frozenset(seen)


def tick_owner(seen: frozenset[str], base: str) -> str | None:
    """Who a tick's tokens, energy and emissions belong to: the base model when no adapter was
    listed, the one adapter listed, or None (shared) when several were."""
    if not seen:
        return base
    if len(seen) == 1:
        return next(iter(seen))
    return None


class AdapterTotals(BaseModel):
    """Cumulative figures of one adapter (or of the base model, or of the shared bucket)."""

    tokens: int = Field(default=0, ge=0)
    energy_joules: float = Field(default=0.0, ge=0)
    emissions_grams: float = Field(default=0.0, ge=0)

    def add(self, tokens: int, joules: float, grams: float) -> None:
        self.tokens += tokens
        self.energy_joules += joules
        self.emissions_grams += grams
