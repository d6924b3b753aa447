"""Hot-loading LoRA adapters: diff two adapter lists, then apply the plan through vLLM's endpoints.

vLLM (with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) loads an adapter with
``POST /v1/load_lora_adapter {"lora_name", "lora_path"}`` and drops one with
``POST /v1/unload_lora_adapter {"lora_name"}``. A changed path is an unload then a load.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from model_garden.api.contracts import ServedArtifact


@dataclass(frozen=True)
class AdapterPlan:
    unload: list[str] = field(default_factory=list)
    load: list[ServedArtifact] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.unload and not self.load

    def describe(self) -> list[str]:
        """Sentences for the log, one per action."""
        return [f"Unloading adapter {name}" for name in self.unload] + [
            f"Loading adapter {a.name} from {a.path}" for a in self.load
        ]


def plan_adapters(
    current: Iterable[ServedArtifact], desired: Iterable[ServedArtifact]
) -> AdapterPlan:
    """What to unload and load to go from ``current`` to ``desired`` (by name; path changes reload).

    Unloads come first so a renamed adapter never needs two slots of ``--max-loras`` at once.
    """
    have = {a.name: a.path for a in current}
    want = {a.name: a for a in desired}
    unload = [name for name, path in have.items() if name not in want or want[name].path != path]
    load = [a for name, a in want.items() if have.get(name) != a.path]
    return AdapterPlan(unload=unload, load=load)


class AdapterUpdateError(RuntimeError):
    pass


def apply_plan(
    client: httpx.Client, plan: AdapterPlan, current: list[ServedArtifact]
) -> tuple[list[ServedArtifact], list[str]]:
    """Apply ``plan`` against a running vLLM; return the adapters now loaded and any errors.

    Each action is independent: a failed load leaves the others in place, and the returned list
    says what vLLM really serves, so the next config change is diffed against the truth.
    """
    loaded = {a.name: a for a in current}
    errors: list[str] = []
    for name in plan.unload:
        response = client.post("/v1/unload_lora_adapter", json={"lora_name": name})
        # vLLM answers 404 for an adapter it does not know: it is gone either way.
        if response.status_code < 300 or response.status_code == 404:
            loaded.pop(name, None)
        else:
            errors.append(f"unload {name}: HTTP {response.status_code} {response.text[:300]}")
    for adapter in plan.load:
        response = client.post(
            "/v1/load_lora_adapter", json={"lora_name": adapter.name, "lora_path": adapter.path}
        )
        if response.status_code < 300:
            loaded[adapter.name] = adapter
        else:
            errors.append(f"load {adapter.name}: HTTP {response.status_code} {response.text[:300]}")
    return list(loaded.values()), errors
