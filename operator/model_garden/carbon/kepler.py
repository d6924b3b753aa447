"""A pod's CPU and DRAM energy as Kepler measured it, read back from Prometheus.

Kepler (sustainable-computing-io/kepler) attributes the node's RAPL energy to pods and
exports it as counters. Two generations of names exist, and both are read:

- Kepler 0.10 and later (the rewrite; the current releases): ``kepler_pod_cpu_joules_total``
  with ``pod_name``, ``pod_namespace``, ``zone`` (the RAPL zone: ``package`` is the CPU,
  ``dram`` the memory; ``core``/``uncore`` are inside ``package`` and ``psys`` is the whole
  platform, so neither is added) and ``state`` (``running``, then ``terminated``: the same
  counter continues under the other label value when the pod ends). Only active energy is
  attributed to pods; the node's idle power is not.
- Kepler 0.7: ``kepler_container_package_joules_total`` (CPU) and
  ``kepler_container_dram_joules_total`` (DRAM) per container, with ``pod_name``,
  ``container_namespace``, ``container_name`` and ``mode`` (``dynamic``, and ``idle``: the
  container's share of the node's idle power; both count). ``kepler_container_joules_total``
  is their sum plus "other" and GPU energy, so it is not used for a component.

The pure functions turn Prometheus answers into joules per component (``cpu``, ``ram``);
:func:`pod_energy` and :func:`pod_counters` are the only I/O, each one HTTP request per
generation with a timeout, raising :class:`KeplerUnavailable` with the reason so the caller
keeps its estimate and says why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
"""Kubernetes names (namespaces, pods, Jobs): safe inside a PromQL string once dots are escaped."""
JOB_POD_PREFIX_MAX = 58
"""The Job controller names pods ``generateName`` style: the ``<job>-`` prefix cut to 58
characters, then 5 random ones."""


class KeplerUnavailable(Exception):
    """Prometheus did not answer, answered badly, or has no Kepler series for the pod."""


@dataclass(frozen=True)
class Scheme:
    """One generation of Kepler's metric names."""

    name: str
    metric: str
    """A metric name, or a regex over names for the 0.7 per-component counters."""
    namespace_label: str
    component_label: str
    components: Mapping[str, str]
    """Value of ``component_label`` -> our component."""
    ignored: tuple[str, ...] = ()
    """Labels that do not tell one counter from another (the same counter moves between
    their values): series that differ only there are merged."""

    def selector(self, namespace: str, pod_pattern: str) -> str:
        values = "|".join(sorted(self.components))
        name = f'__name__=~"{self.metric}"' if self.component_label == "__name__" else None
        matchers = [
            *([name] if name else []),
            f'{self.namespace_label}="{namespace}"',
            f'pod_name=~"{pod_pattern}"',
            *([] if name else [f'{self.component_label}=~"{values}"']),
        ]
        head = "" if name else self.metric
        return head + "{" + ",".join(matchers) + "}"

    def component(self, labels: Mapping[str, str]) -> str | None:
        return self.components.get(labels.get(self.component_label, ""))

    def source(self, labels: Mapping[str, str]) -> str:
        if self.component_label == "__name__":
            return f"kepler:{labels.get('__name__', self.metric)}"
        return f"kepler:{self.metric}{{{self.component_label}={labels.get(self.component_label)}}}"

    def identity(self, labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in labels.items() if k not in self.ignored))


CURRENT = Scheme(
    name="kepler>=0.10",
    metric="kepler_pod_cpu_joules_total",
    namespace_label="pod_namespace",
    component_label="zone",
    components={"package": "cpu", "dram": "ram"},
    ignored=("state",),
)
LEGACY = Scheme(
    name="kepler 0.7",
    metric="kepler_container_(package|dram)_joules_total",
    namespace_label="container_namespace",
    component_label="__name__",
    components={
        "kepler_container_package_joules_total": "cpu",
        "kepler_container_dram_joules_total": "ram",
    },
)
SCHEMES = (CURRENT, LEGACY)
"""Tried in this order: the current releases first."""


@dataclass
class PodEnergy:
    """Joules per component (``cpu``, ``ram``) and the series each came from."""

    joules: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    scheme: str = ""


def exact_pod(name: str) -> str:
    """The PromQL regex matching exactly this pod name."""
    return _escaped(_checked(name, "pod name"))


def job_pods(job_name: str) -> str:
    """The PromQL regex matching every pod a Job created, across its retries and re-creations."""
    prefix = f"{_checked(job_name, 'Job name')}-"[:JOB_POD_PREFIX_MAX]
    return _escaped(prefix) + "[a-z0-9]{5}"


def _checked(name: str, what: str) -> str:
    if not NAME.match(name):
        raise ValueError(f"{what} {name!r} is not a Kubernetes name")
    return name


def _escaped(name: str) -> str:
    return name.replace(".", "\\\\.")  # a regex dot, inside a PromQL double-quoted string


def _series(result: Any, kind: str) -> list[dict[str, Any]]:
    if not isinstance(result, list):
        raise KeplerUnavailable(f"Prometheus answered data.result={result!r}, not a {kind}")
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise KeplerUnavailable(f"Prometheus answered a series without labels: {item!r}")
    return result


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise KeplerUnavailable(f"{where}: {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise KeplerUnavailable(f"{where}: {value!r} is not a finite number")
    return number


def _merged(
    result: list[dict[str, Any]], scheme: Scheme, key: str
) -> dict[tuple[tuple[str, str], ...], tuple[dict[str, str], dict[float, float]]]:
    """Series by counter identity: samples ``time -> value``, the highest where states overlap."""
    merged: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], dict[float, float]]] = {}
    for item in result:
        labels = {str(k): str(v) for k, v in item["metric"].items()}
        if scheme.component(labels) is None:
            continue
        pairs = item.get(key) if key == "values" else [item.get(key)]
        if not isinstance(pairs, list):
            raise KeplerUnavailable(f"series {labels} has no {key!r}")
        _, samples = merged.setdefault(scheme.identity(labels), (labels, {}))
        for pair in pairs:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise KeplerUnavailable(f"series {labels}: sample {pair!r} is not [time, value]")
            at = _number(pair[0], f"series {labels} time")
            value = _number(pair[1], f"series {labels} at {pair[0]}")
            samples[at] = max(value, samples.get(at, value))
    return merged


def increase(values: Iterable[float], from_zero: bool) -> float:
    """What a counter gained over its samples (in time order): every rise, and after a drop
    (Kepler restarted) the new value, as PromQL's ``increase`` counts resets but without its
    extrapolation to the range's ends. ``from_zero``: the counter began inside the range (the
    pod started after it), so its first value was gained too."""
    total, last = 0.0, None
    for value in values:
        if last is None:
            total += value if from_zero else 0.0
        else:
            total += value - last if value >= last else value
        last = value
    return total


def joules_from_range(result: Any, scheme: Scheme, from_zero: bool = True) -> PodEnergy:
    """Per component, the increase of the pod's counters over a range query's raw samples
    (a Prometheus matrix: ``[{"metric": {...}, "values": [[t, "v"], ...]}, ...]``)."""
    energy = PodEnergy(scheme=scheme.name)
    for labels, samples in _merged(_series(result, "matrix"), scheme, "values").values():
        component = scheme.component(labels)
        assert component is not None  # _merged keeps only known components
        gained = increase((samples[t] for t in sorted(samples)), from_zero)
        energy.joules[component] = energy.joules.get(component, 0.0) + gained
        energy.sources.setdefault(component, scheme.source(labels))
    return energy


def joules_from_vector(result: Any, scheme: Scheme) -> PodEnergy:
    """Per component, the sum of the pod's counters now (an instant query's vector:
    ``[{"metric": {...}, "value": [t, "v"]}, ...]``)."""
    energy = PodEnergy(scheme=scheme.name)
    for labels, samples in _merged(_series(result, "vector"), scheme, "value").values():
        component = scheme.component(labels)
        assert component is not None
        energy.joules[component] = energy.joules.get(component, 0.0) + max(samples.values())
        energy.sources.setdefault(component, scheme.source(labels))
    return energy


# --- I/O: one request per scheme, with a timeout -------------------------------------------


def _query(client: httpx.Client, url: str, expr: str, at: float) -> Any:
    try:
        response = client.get(
            f"{url.rstrip('/')}/api/v1/query", params={"query": expr, "time": f"{at:.3f}"}
        )
    except httpx.HTTPError as exc:
        raise KeplerUnavailable(f"Prometheus at {url} did not answer: {exc!r}") from exc
    try:
        body = response.json()
    except ValueError as exc:
        raise KeplerUnavailable(
            f"Prometheus at {url} answered HTTP {response.status_code} without JSON"
        ) from exc
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else body
        raise KeplerUnavailable(f"Prometheus at {url} refused {expr!r}: {error}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise KeplerUnavailable(f"Prometheus at {url} answered without data")
    return data.get("result")


def pod_energy(
    url: str,
    namespace: str,
    pod_pattern: str,
    start: float,
    end: float,
    timeout_s: float = 5.0,
) -> PodEnergy:
    """Joules per component of the pods matching ``pod_pattern`` between ``start`` and
    ``end`` (unix seconds), from the raw samples (``metric[range]`` at ``end``); every pod is
    taken to have started after ``start``. Raises :class:`KeplerUnavailable`."""
    seconds = max(1, math.ceil(end - start))
    with httpx.Client(timeout=timeout_s) as client:
        for scheme in SCHEMES:
            selector = scheme.selector(_checked(namespace, "namespace"), pod_pattern)
            energy = joules_from_range(_query(client, url, f"{selector}[{seconds}s]", end), scheme)
            if energy.joules:
                return energy
    raise KeplerUnavailable(
        f"Prometheus at {url} has no Kepler series for pods {pod_pattern!r} in {namespace}"
    )


def pod_counters(
    url: str, namespace: str, pod_name: str, at: float, timeout_s: float = 5.0
) -> PodEnergy:
    """The pod's Kepler counters now (joules since Kepler first saw it), per component.
    Raises :class:`KeplerUnavailable`."""
    pattern = exact_pod(pod_name)
    with httpx.Client(timeout=timeout_s) as client:
        for scheme in SCHEMES:
            selector = scheme.selector(_checked(namespace, "namespace"), pattern)
            energy = joules_from_vector(_query(client, url, selector, at), scheme)
            if energy.joules:
                return energy
    raise KeplerUnavailable(
        f"Prometheus at {url} has no Kepler series for pod {pod_name} in {namespace}"
    )
