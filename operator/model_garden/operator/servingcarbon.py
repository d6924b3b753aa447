"""Serving carbon in status: meter readings -> InferenceDeployment -> ModelVersion totals.

Pure functions over wire dicts (what the API server stores), so the operator wires them and the
tests prove the sums on real meter output. Each pod's meter reports totals since the pod started;
``status.carbon.pods`` keeps, per pod uid, the last reading already counted (its *baseline*):

- a reading adds ``reading - baseline`` and becomes the new baseline; a pod not read this poll
  keeps its baseline, so a missed poll loses nothing (the next reading's delta covers it);
- a pod without a baseline is new: all of its reading counts (its meter started with it);
- a reading lower than its baseline means the meter lost its totals (state file gone): the whole
  reading counts;
- baselines live in status, not in the operator's memory, so totals add up across operator
  restarts.

Per-token figures use the meters' sliding windows, active energy only: Σ window grams /
Σ window tokens × 1000 over the replicas. Idle energy counts in the totals, never per token.

Each poll's delta is also attributed to the ModelVersion being served (``byModelVersion``); the
ModelVersion's planner copies those entries into its own status with :func:`serving_totals`,
so only the ModelVersion's reconciler writes ModelVersion status (no read-modify-write race).

Per adapter (docs/carbon.md, "Per adapter"): a meter reports, besides its totals, the active
figures of the ticks it could give to one adapter (``byAdapter``, the base model under its served
name) and of the ticks that mixed adapters (``unattributed*``). Their deltas are summed the same
way, with per-pod baselines, into ``status.carbon.byAdapter`` and ``unattributed*``; given the
deployment's adapter -> ModelVersion map, each adapter's delta goes to its ModelVersion's
``byModelVersion`` entry, the shared bucket to none, and the served version keeps the rest (its
own ticks and all idle energy), so the entries plus the shared bucket are the deployment's totals.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from model_garden.api.contracts import ServingCarbon
from model_garden.carbon.grid import JOULES_PER_KWH

DEFAULT_WINDOW_SECONDS = 300.0


@dataclass(frozen=True)
class Share:
    """Active figures of one adapter (or of the shared bucket) in a reading or a delta."""

    energy_joules: float = 0.0
    emissions_grams: float = 0.0
    tokens: int = 0

    def plus(self, other: Share) -> Share:
        return Share(
            self.energy_joules + other.energy_joules,
            self.emissions_grams + other.emissions_grams,
            self.tokens + other.tokens,
        )

    def minus(self, other: Share) -> Share:
        return Share(
            self.energy_joules - other.energy_joules,
            self.emissions_grams - other.emissions_grams,
            self.tokens - other.tokens,
        )

    def below(self, other: Share) -> bool:
        return (
            self.energy_joules < other.energy_joules
            or self.emissions_grams < other.emissions_grams
            or self.tokens < other.tokens
        )

    @classmethod
    def from_wire(cls, entry: Mapping[str, Any], prefix: str = "") -> Share:
        def key(name: str) -> str:
            return f"{prefix}{name[0].upper()}{name[1:]}" if prefix else name

        return cls(
            float(entry.get(key("energyJoules"), 0.0)),
            float(entry.get(key("emissionsGrams"), 0.0)),
            int(entry.get(key("tokens"), 0)),
        )


ZERO = Share()


@dataclass(frozen=True)
class PodReading:
    """The cumulative figures of one pod's meter that status sums (wire names in ``WIRE``).

    ``split`` says the reading carries the per-adapter figures (``adapters``, ``shared``); a
    baseline without them (written before they existed, or by a schema that dropped them) only
    sets the adapters' origin, so nothing is counted twice.
    """

    active_energy_joules: float = 0.0
    idle_energy_joules: float = 0.0
    active_emissions_grams: float = 0.0
    idle_emissions_grams: float = 0.0
    tokens: int = 0
    adapters: tuple[tuple[str, Share], ...] = ()
    shared: Share = ZERO
    split: bool = False

    @classmethod
    def of(cls, reading: ServingCarbon) -> PodReading:
        """The split figures; a meter from before the split reports totals only: the energy
        not split counts as idle, emissions follow the energy's split."""
        active_j, idle_j = reading.active_energy_joules, reading.idle_energy_joules
        if active_j + idle_j == 0.0:
            idle_j = reading.energy_joules
        active_g, idle_g = reading.active_emissions_grams, reading.idle_emissions_grams
        if active_g + idle_g == 0.0 and reading.emissions_grams > 0.0:
            share = active_j / (active_j + idle_j) if active_j + idle_j else 0.0
            active_g = reading.emissions_grams * share
            idle_g = reading.emissions_grams - active_g
        adapters = tuple(
            (name, Share(a.energy_joules, a.emissions_grams, a.tokens))
            for name, a in sorted(reading.by_adapter.items())
        )
        shared = Share(
            reading.unattributed_energy_joules,
            reading.unattributed_emissions_grams,
            reading.unattributed_tokens,
        )
        # a meter that knows adapters always sends byAdapter, if only empty
        split = "by_adapter" in reading.model_fields_set or bool(adapters) or shared != ZERO
        return cls(active_j, idle_j, active_g, idle_g, reading.tokens, adapters, shared, split)

    @classmethod
    def from_wire(cls, entry: Mapping[str, Any]) -> PodReading:
        adapters = tuple(
            (str(a["adapter"]), Share.from_wire(a)) for a in entry.get("byAdapter") or []
        )
        return cls(
            float(entry.get("activeEnergyJoules", 0.0)),
            float(entry.get("idleEnergyJoules", 0.0)),
            float(entry.get("activeEmissionsGrams", 0.0)),
            float(entry.get("idleEmissionsGrams", 0.0)),
            int(entry.get("tokens", 0)),
            adapters,
            Share.from_wire(entry, prefix="unattributed"),
            "byAdapter" in entry or "unattributedTokens" in entry,
        )

    def share(self, adapter: str) -> Share:
        return dict(self.adapters).get(adapter, ZERO)

    def to_wire(self, uid: str) -> dict[str, Any]:
        split: dict[str, Any] = {}
        if self.split:
            split = {
                "byAdapter": [
                    {
                        "adapter": name,
                        "energyJoules": a.energy_joules,
                        "emissionsGrams": a.emissions_grams,
                        "tokens": a.tokens,
                    }
                    for name, a in self.adapters
                ],
                "unattributedEnergyJoules": self.shared.energy_joules,
                "unattributedEmissionsGrams": self.shared.emissions_grams,
                "unattributedTokens": self.shared.tokens,
            }
        return {
            "uid": uid,
            "energyJoules": self.active_energy_joules + self.idle_energy_joules,
            "activeEnergyJoules": self.active_energy_joules,
            "idleEnergyJoules": self.idle_energy_joules,
            "emissionsGrams": self.active_emissions_grams + self.idle_emissions_grams,
            "activeEmissionsGrams": self.active_emissions_grams,
            "idleEmissionsGrams": self.idle_emissions_grams,
            "tokens": self.tokens,
            **split,
        }

    def below(self, other: PodReading) -> bool:
        """Some counter went down: the meter started again from zero."""
        totals = any(getattr(self, f) < getattr(other, f) for f in TOTALS)
        parts = (
            self.split
            and other.split
            and (
                self.shared.below(other.shared)
                or any(self.share(name).below(share) for name, share in other.adapters)
            )
        )
        return totals or parts

    def minus(self, baseline: PodReading | None) -> PodReading:
        """What this reading adds on top of ``baseline`` (all of it without one, or after a reset).

        Against a baseline without the per-adapter figures, the adapters add nothing this time:
        their totals since the pod started are not known to be new."""
        if baseline is None or self.below(baseline):
            return self
        adapters: tuple[tuple[str, Share], ...] = ()
        shared = ZERO
        if baseline.split:
            adapters = tuple(
                (name, share.minus(baseline.share(name))) for name, share in self.adapters
            )
            shared = self.shared.minus(baseline.shared)
        return PodReading(
            self.active_energy_joules - baseline.active_energy_joules,
            self.idle_energy_joules - baseline.idle_energy_joules,
            self.active_emissions_grams - baseline.active_emissions_grams,
            self.idle_emissions_grams - baseline.idle_emissions_grams,
            self.tokens - baseline.tokens,
            adapters,
            shared,
            self.split and baseline.split,
        )


TOTALS = tuple(f.name for f in fields(PodReading) if f.name not in ("adapters", "shared", "split"))


def accumulate(
    carbon: Mapping[str, Any] | None,
    readings: Mapping[str, ServingCarbon],
    model_version: str | None,
    live_pods: Collection[str] | None = None,
    adapters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The new ``status.carbon`` (wire form) from the current one and this poll's readings.

    ``readings`` maps pod uid to that pod's meter reading; ``model_version`` (the version being
    served) gets this poll's delta in ``byModelVersion``. ``live_pods``, when given, are the uids
    of the deployment's pods that still exist: baselines of the others are dropped so the list
    does not grow with every rollout (a deleted pod's last, unread interval is lost either way).
    ``adapters`` maps each adapter's served name to its ModelVersion (spec.adapters): given, each
    adapter's share goes to its version and the served version keeps the rest (None: it keeps
    everything and no per-adapter field is written, as before adapters were metered).
    """
    current: Mapping[str, Any] = carbon or {}
    baselines = {entry["uid"]: PodReading.from_wire(entry) for entry in current.get("pods") or []}
    # A status written before baselines were kept: its totals already hold these pods' energy,
    # so their first reading only sets the baseline.
    legacy = bool(current) and "pods" not in current and float(current.get("energyKwh", 0)) > 0

    delta = PodReading()
    for uid, reading in readings.items():
        now = PodReading.of(reading)
        if adapters is None:
            now = replace(now, adapters=(), shared=ZERO, split=False)
        if not (legacy and uid not in baselines):
            delta = _plus(delta, now.minus(baselines.get(uid)))
        baselines[uid] = now
    if live_pods is not None:
        keep = set(live_pods) | set(readings)
        baselines = {uid: b for uid, b in baselines.items() if uid in keep}

    out: dict[str, Any] = {
        "activeEnergyKwh": _get(current, "activeEnergyKwh")
        + delta.active_energy_joules / JOULES_PER_KWH,
        "idleEnergyKwh": _get(current, "idleEnergyKwh") + delta.idle_energy_joules / JOULES_PER_KWH,
        "activeEmissionsKg": _get(current, "activeEmissionsKg")
        + delta.active_emissions_grams / 1000.0,
        "idleEmissionsKg": _get(current, "idleEmissionsKg") + delta.idle_emissions_grams / 1000.0,
        "tokens": int(current.get("tokens", 0)) + delta.tokens,
    }
    if legacy:  # keep the totals counted before the split as "active"; they were never split
        for split, total in (
            ("activeEnergyKwh", "energyKwh"),
            ("activeEmissionsKg", "emissionsKg"),
        ):
            out[split] += _get(current, total)
    out["energyKwh"] = out["activeEnergyKwh"] + out["idleEnergyKwh"]
    out["emissionsKg"] = out["activeEmissionsKg"] + out["idleEmissionsKg"]
    out.update(_window(current, readings.values()))
    out.update(_grid(current, readings.values()))
    out["pods"] = [b.to_wire(uid) for uid, b in sorted(baselines.items())]
    bases = {r.base_model for r in readings.values() if r.base_model}
    if adapters is not None:
        out.update(_adapters(current, delta, bases, model_version, adapters))
    out["byModelVersion"] = _attribute(
        current.get("byModelVersion") or [], model_version, delta, bases, adapters
    )
    return out


def serving_totals(
    mv_name: str, current: list[dict[str, Any]], ideps: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ModelVersion's ``servingByDeployment`` and serving totals (wire form).

    ``current`` is the version's own ``status.servingByDeployment``; ``ideps`` the namespace's
    InferenceDeployment bodies. Each deployment's ``byModelVersion`` entry for ``mv_name``
    replaces the entry of the same deployment uid; entries of deleted deployments are kept (their
    energy was spent). Lifetime emissions (training + serving) are the MV planner's to add.
    """
    entries = {entry["uid"]: dict(entry) for entry in current}
    for body in ideps:
        meta = body.get("metadata") or {}
        uid = meta.get("uid")
        carbon = (body.get("status") or {}).get("carbon") or {}
        for served in carbon.get("byModelVersion") or []:
            if uid and served.get("modelVersion") == mv_name:
                entries[uid] = {
                    "deployment": meta.get("name", ""),
                    "uid": uid,
                    "energyKwh": float(served.get("energyKwh", 0.0)),
                    "emissionsKg": float(served.get("emissionsKg", 0.0)),
                    "tokens": int(served.get("tokens", 0)),
                }
    ordered = sorted(entries.values(), key=lambda e: (e.get("deployment", ""), e["uid"]))
    return {
        "servingByDeployment": ordered,
        "servingEnergyKwh": sum(float(e.get("energyKwh", 0.0)) for e in ordered),
        "servingEmissionsKg": sum(float(e.get("emissionsKg", 0.0)) for e in ordered),
        "tokensServed": sum(int(e.get("tokens", 0)) for e in ordered),
    }


def _get(carbon: Mapping[str, Any], key: str) -> float:
    return float(carbon.get(key) or 0.0)


def _plus(a: PodReading, b: PodReading) -> PodReading:
    shares = dict(a.adapters)
    for name, share in b.adapters:
        shares[name] = shares.get(name, ZERO).plus(share)
    return PodReading(
        a.active_energy_joules + b.active_energy_joules,
        a.idle_energy_joules + b.idle_energy_joules,
        a.active_emissions_grams + b.active_emissions_grams,
        a.idle_emissions_grams + b.idle_emissions_grams,
        a.tokens + b.tokens,
        tuple(sorted(shares.items())),
        a.shared.plus(b.shared),
        a.split or b.split,
    )


def _adapters(
    current: Mapping[str, Any],
    delta: PodReading,
    bases: set[str],
    model_version: str | None,
    adapters: Mapping[str, str] | None,
) -> dict[str, Any]:
    """``byAdapter`` and ``unattributed*`` (cumulative) with this poll's delta added; each entry
    names its ModelVersion when known (an adapter of spec.adapters, or the base's version)."""
    by_name = {e["adapter"]: dict(e) for e in current.get("byAdapter") or []}
    for name, share in delta.adapters:
        entry = by_name.setdefault(
            name, {"adapter": name, "energyKwh": 0.0, "emissionsKg": 0.0, "tokens": 0}
        )
        entry["energyKwh"] = _get(entry, "energyKwh") + share.energy_joules / JOULES_PER_KWH
        entry["emissionsKg"] = _get(entry, "emissionsKg") + share.emissions_grams / 1000.0
        entry["tokens"] = int(entry.get("tokens", 0)) + share.tokens
        version = (adapters or {}).get(name) or (model_version if name in bases else None)
        if version:
            entry["modelVersion"] = version
    if not by_name and not delta.split and "unattributedTokens" not in current:
        return {}
    return {
        "byAdapter": [by_name[name] for name in sorted(by_name)],
        "unattributedEnergyKwh": _get(current, "unattributedEnergyKwh")
        + delta.shared.energy_joules / JOULES_PER_KWH,
        "unattributedEmissionsKg": _get(current, "unattributedEmissionsKg")
        + delta.shared.emissions_grams / 1000.0,
        "unattributedTokens": int(current.get("unattributedTokens", 0)) + delta.shared.tokens,
    }


def _window(current: Mapping[str, Any], readings: Iterable[ServingCarbon]) -> dict[str, Any]:
    """gPer1kTokens over the meters' windows: a ratio of sums over replicas (unchanged unread)."""
    readings = list(readings)
    if not readings:
        kept = {k: current[k] for k in ("gPer1kTokens", "windowSeconds") if k in current}
        return {"windowSeconds": DEFAULT_WINDOW_SECONDS, **kept}
    grams = sum(r.window_active_emissions_grams for r in readings)
    tokens = sum(r.window_tokens for r in readings)
    out: dict[str, Any] = {"windowSeconds": max(r.window_seconds for r in readings)}
    if tokens:
        out["gPer1kTokens"] = grams / tokens * 1000.0
    return out


def _grid(current: Mapping[str, Any], readings: Iterable[ServingCarbon]) -> dict[str, Any]:
    """method (measured only when every replica measured), grid intensity and region."""
    readings = list(readings)
    out: dict[str, Any] = {"method": current.get("method", "estimated")}
    if readings:
        out["method"] = (
            "measured" if all(str(r.method) == "measured" for r in readings) else "estimated"
        )
    intensity = next(
        (r.grid_intensity_g_per_kwh for r in readings if r.grid_intensity_g_per_kwh is not None),
        current.get("gridIntensityGPerKwh"),
    )
    region = next((r.region or r.country for r in readings if r.region or r.country), None)
    region = region or current.get("region")
    if intensity is not None:
        out["gridIntensityGPerKwh"] = intensity
    if region:
        out["region"] = region
    for field, key in (("grid_source", "gridSource"), ("grid_time", "gridTime")):
        said = next((getattr(r, field) for r in readings if getattr(r, field)), current.get(key))
        if said:
            out[key] = said
    return out


def _attribute(
    entries: list[dict[str, Any]],
    model_version: str | None,
    delta: PodReading,
    bases: set[str],
    adapters: Mapping[str, str] | None,
) -> list[dict[str, Any]]:
    """``byModelVersion`` with this poll's delta added: each adapter's share to its version,
    the shared bucket and adapters that are no ModelVersion (loaded at run time) to none, and
    the rest (the base model's ticks and the idle energy) to ``model_version``."""
    by_name = {e["modelVersion"]: dict(e) for e in entries}

    def add(version: str, share: Share) -> None:
        entry = by_name.setdefault(
            version,
            {"modelVersion": version, "energyKwh": 0.0, "emissionsKg": 0.0, "tokens": 0},
        )
        entry["energyKwh"] = _get(entry, "energyKwh") + share.energy_joules / JOULES_PER_KWH
        entry["emissionsKg"] = _get(entry, "emissionsKg") + share.emissions_grams / 1000.0
        entry["tokens"] = int(entry.get("tokens", 0)) + share.tokens

    rest = Share(
        delta.active_energy_joules + delta.idle_energy_joules,
        delta.active_emissions_grams + delta.idle_emissions_grams,
        delta.tokens,
    )
    if adapters is not None and delta.split:
        rest = rest.minus(delta.shared)
        for name, share in delta.adapters:
            if name in bases:
                continue
            rest = rest.minus(share)
            if name in adapters:
                add(adapters[name], share)
        # float subtraction must not leave -1e-18 J to a schema that wants >= 0
        rest = Share(max(rest.energy_joules, 0.0), max(rest.emissions_grams, 0.0), rest.tokens)
    if model_version:
        add(model_version, rest)
    return [by_name[name] for name in sorted(by_name)]
