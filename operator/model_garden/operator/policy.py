"""The admin policy: what a namespace user may make the operator do on their behalf.

The operator runs pods with its own privileges, so whoever may create a FineTuneJob or an
InferenceDeployment could otherwise pick any image, pass vLLM any flag (``--trust-remote-code``
runs code from a model repository), tolerate every taint, or ask for every GPU (a confused
deputy). A cluster admin bounds that with a ConfigMap (``settings.policy_namespace`` /
``settings.policy_config_map``, key ``policy.yaml``, installed by the chart). Without one, the
documented default applies (:func:`default_policy`). A ConfigMap that does not parse is never
replaced by the default: the operator refuses every resource with a message naming the key
(fail closed), because a typo must not silently widen what users may do.

Checks are pure: ``check_finetunejob(spec, policy)`` / ``check_inferencedeployment(spec,
policy)`` return one :class:`Refusal` per violation, each naming the field, the rule and the
ConfigMap, so a user knows what to change and an admin knows what to relax.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from model_garden.api.common import Resources, describe_errors
from model_garden.api.finetunejob import FineTuneJobSpec
from model_garden.api.inferencedeployment import InferenceDeploymentSpec

from .settings import OperatorSettings
from .vllmflags import DEFAULT_ALLOWED_EXTRA_ARGS, DENIED_EXTRA_ARGS, flag_name

POLICY_KEY = "policy.yaml"
GPU_TOLERATION_KEY = "nvidia.com/gpu"
ANY = "*"


class AdminPolicy(BaseModel):
    """What users may ask of the operator; the body of ``policy.yaml`` (camelCase keys).

    Lists are exact values; ``"*"`` in a list allows anything (except ``DENIED_EXTRA_ARGS``).
    ``None`` for a number means no limit beyond the schema's.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    allowed_image_prefixes: list[str] = Field(
        description="Image overrides (spec.image, spec.engine.image) must start with one of "
        "these: a repository ('registry/team/trainer' matches its tags and digests) or a "
        "prefix ending in '/' ('registry/team/' matches every image under it).",
    )
    allowed_extra_args: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_EXTRA_ARGS),
        description="vLLM flags spec.engine.extraArgs may carry (names, without values).",
    )
    max_gpus_per_pod: int | None = Field(
        default=None, ge=0, description="GPUs one pod may request (serving: with tensor parallel)."
    )
    max_gpus_per_resource: int | None = Field(
        default=None, ge=0, description="GPUs one resource may hold (serving: per pod x replicas)."
    )
    allowed_toleration_keys: list[str] = Field(
        default_factory=lambda: [GPU_TOLERATION_KEY],
        description="Taint keys spec.resources.tolerations may name; a toleration without a key "
        "tolerates every taint and needs '*'.",
    )
    allowed_output_claims: list[str] | None = Field(
        default=None,
        description="Claims a FineTuneJob (spec.output.storage) or an InferenceDeployment's model "
        "cache (spec.modelCache) may write to; default: any claim of its own namespace (a pod "
        "gets only those folders writable).",
    )


@dataclass(frozen=True)
class PolicySource:
    """Where the policy in force came from, as refusals name it."""

    namespace: str
    name: str
    installed: bool

    def describe(self) -> str:
        where = f"ConfigMap {self.namespace}/{self.name}"
        return where if self.installed else f"the default policy: no {where}"


@dataclass(frozen=True)
class Policy:
    """A policy and its source (so refusals can say which ConfigMap to look at)."""

    rules: AdminPolicy
    source: PolicySource


@dataclass(frozen=True)
class Refusal:
    """One thing the policy does not allow: the field, its value, the rule, and why."""

    field: str
    value: str
    rule: str
    source: str
    reason: str = ""

    def message(self) -> str:
        value = f" {self.value!r}" if self.value else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{self.field}{value} is not allowed by policy rule {self.rule} ({self.source}){why}"

    def __str__(self) -> str:
        return self.message()


class PolicyError(ValueError):
    """The policy ConfigMap exists but cannot be read: every resource is refused until fixed."""

    def __init__(self, source: PolicySource, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(
            f"ConfigMap {source.namespace}/{source.name} key {POLICY_KEY}: " + "; ".join(problems)
        )

    def refusal(self) -> Refusal:
        """The one refusal every resource gets while the policy is broken."""
        return Refusal(
            field="policy",
            value="",
            rule="valid policy",
            source=f"ConfigMap {self.source.namespace}/{self.source.name}",
            reason=f"{self} (every resource is refused until an admin fixes it)",
        )


def image_repository(image: str) -> str:
    """``registry:5000/team/trainer:0.1@sha256:…`` -> ``registry:5000/team/trainer``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def default_policy(settings: OperatorSettings) -> AdminPolicy:
    """The policy with no ConfigMap: our own images, safe vLLM flags, GPU taints, no GPU cap."""
    images = [settings.trainer_image, settings.server_image, settings.verify_image]
    return AdminPolicy(
        allowed_image_prefixes=sorted({image_repository(i) for i in images if i}),
    )


def load_policy(config_map: dict[str, Any] | None, settings: OperatorSettings) -> Policy:
    """The policy in force, from the ConfigMap's body (None: not installed -> the default).

    Raises PolicyError, naming the ConfigMap key and the field, when it is installed but not
    a valid policy; callers refuse every resource then (:meth:`PolicyError.refusal`).
    """
    ns, name = settings.policy_namespace, settings.policy_config_map
    if config_map is None:
        return Policy(default_policy(settings), PolicySource(ns, name, installed=False))
    source = PolicySource(ns, name, installed=True)
    text = (config_map.get("data") or {}).get(POLICY_KEY)
    if text is None:
        raise PolicyError(source, [f"missing (the policy is read from data.{POLICY_KEY})"])
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(source, [f"not YAML: {exc}".replace("\n", " ")]) from exc
    if not isinstance(document, dict):
        raise PolicyError(source, ["must be a mapping such as 'allowedImagePrefixes: [...]'"])
    try:
        return Policy(AdminPolicy.model_validate(document), source)
    except ValidationError as exc:
        raise PolicyError(source, describe_errors(exc)) from exc


def in_force(
    policy: Policy | PolicyError | None, settings: OperatorSettings
) -> Policy | PolicyError:
    """The policy a planner checks: the observed one, or the default (None: nothing read,
    as in planner tables and local mode)."""
    return policy if policy is not None else load_policy(None, settings)


def image_allowed(image: str, prefixes: list[str]) -> bool:
    """Matches on name boundaries: 'r/trainer' allows 'r/trainer:1', never 'r/trainer-x:1'."""
    for prefix in prefixes:
        if prefix == ANY:
            return True
        if prefix.endswith("/") and image.startswith(prefix):
            return True
        if image == prefix or any(image.startswith(prefix + sep) for sep in (":", "@")):
            return True
    return False


def check_extra_args(args: list[str], field: str, policy: Policy) -> list[Refusal]:
    """Every flag must be allowed and not denied; a leading value is a positional argument."""
    allowed = set(policy.rules.allowed_extra_args)
    source = policy.source.describe()
    out: list[Refusal] = []
    for i, arg in enumerate(args):
        name = flag_name(arg)
        where = f"{field}[{i}]"
        if name is None:
            if i == 0:
                out.append(
                    Refusal(where, arg, "allowedExtraArgs", source, "a value without a flag")
                )
            continue
        if name in DENIED_EXTRA_ARGS:
            out.append(Refusal(where, arg, "deniedExtraArgs", source, DENIED_EXTRA_ARGS[name]))
        elif ANY not in allowed and name not in allowed:
            out.append(Refusal(where, arg, "allowedExtraArgs", source))
    return out


def check_image(image: str | None, field: str, policy: Policy) -> list[Refusal]:
    if image is None or image_allowed(image, policy.rules.allowed_image_prefixes):
        return []
    prefixes = ", ".join(policy.rules.allowed_image_prefixes) or "none"
    return [
        Refusal(
            field,
            image,
            "allowedImagePrefixes",
            policy.source.describe(),
            f"allowed: {prefixes}",
        )
    ]


def check_tolerations(resources: Resources, field: str, policy: Policy) -> list[Refusal]:
    allowed = set(policy.rules.allowed_toleration_keys)
    if ANY in allowed:
        return []
    out = []
    for i, toleration in enumerate(resources.tolerations):
        key = toleration.key or ""
        if key not in allowed:
            out.append(
                Refusal(
                    f"{field}.tolerations[{i}].key",
                    key or "(empty: every taint)",
                    "allowedTolerationKeys",
                    policy.source.describe(),
                    f"allowed: {', '.join(sorted(allowed)) or 'none'}",
                )
            )
    return out


def check_gpus(per_pod: int, total: int, field: str, policy: Policy) -> list[Refusal]:
    rules, source = policy.rules, policy.source.describe()
    out = []
    if rules.max_gpus_per_pod is not None and per_pod > rules.max_gpus_per_pod:
        out.append(
            Refusal(
                field,
                f"{per_pod} per pod",
                "maxGpusPerPod",
                source,
                f"at most {rules.max_gpus_per_pod}",
            )
        )
    if rules.max_gpus_per_resource is not None and total > rules.max_gpus_per_resource:
        out.append(
            Refusal(
                field,
                f"{total} in all",
                "maxGpusPerResource",
                source,
                f"at most {rules.max_gpus_per_resource}",
            )
        )
    return out


def check_output_claim(
    storage: str, policy: Policy, field: str = "spec.output.storage"
) -> list[Refusal]:
    """A claim a pod would get writable must be one the policy allows."""
    claims = policy.rules.allowed_output_claims
    if claims is None or ANY in claims or not storage.startswith("pvc://"):
        return []
    claim = storage.removeprefix("pvc://").split("/", 1)[0]
    if claim in claims:
        return []
    return [
        Refusal(
            field,
            storage,
            "allowedOutputClaims",
            policy.source.describe(),
            f"allowed claims: {', '.join(claims) or 'none'}",
        )
    ]


def check_finetunejob(spec: FineTuneJobSpec, policy: Policy | PolicyError) -> list[Refusal]:
    """What the policy refuses in a FineTuneJob (empty: admitted; a broken policy refuses all)."""
    if isinstance(policy, PolicyError):
        return [policy.refusal()]
    gpus = spec.resources.gpus
    return [
        *check_image(spec.image, "spec.image", policy),
        *check_gpus(gpus, gpus, "spec.resources.gpus", policy),
        *check_tolerations(spec.resources, "spec.resources", policy),
        *check_output_claim(spec.output.storage, policy),
    ]


def serving_gpus_per_pod(spec: InferenceDeploymentSpec) -> int:
    """GPUs a server pod requests: at least tensorParallelSize once it asks for any."""
    gpus = spec.resources.gpus
    return max(gpus, spec.engine.tensor_parallel_size) if gpus else 0


def check_inferencedeployment(
    spec: InferenceDeploymentSpec, policy: Policy | PolicyError
) -> list[Refusal]:
    """What the policy refuses in an InferenceDeployment (empty: admitted; broken: all)."""
    if isinstance(policy, PolicyError):
        return [policy.refusal()]
    per_pod = serving_gpus_per_pod(spec)
    # The most pods it may run: the autoscaler's maximum, and every version of a split at full
    # size (blue-green keeps both).
    replicas = spec.autoscaling.max_replicas if spec.autoscaling else spec.replicas
    replicas *= max(1, len(spec.traffic or []))
    return [
        *check_image(spec.engine.image, "spec.engine.image", policy),
        *check_extra_args(spec.engine.extra_args, "spec.engine.extraArgs", policy),
        *check_gpus(per_pod, per_pod * replicas, "spec.resources.gpus", policy),
        *check_tolerations(spec.resources, "spec.resources", policy),
        *(
            check_output_claim(spec.model_cache, policy, "spec.modelCache")
            if spec.model_cache
            else []
        ),
    ]


def refusals_message(refusals: list[Refusal]) -> str:
    """One condition message for all refusals (the first three, then how many more)."""
    shown = "; ".join(r.message() for r in refusals[:3])
    more = len(refusals) - 3
    return shown + (f"; and {more} more" if more > 0 else "")


class PolicyCache:
    """The policy in force, re-read at most every ``ttl`` seconds (one GET, not one per reconcile).

    ``fetch`` returns the ConfigMap's body or None when it does not exist; it is the only I/O.
    A broken ConfigMap yields its PolicyError (returned, not raised) so callers refuse.
    """

    def __init__(
        self,
        fetch: Callable[[], dict[str, Any] | None],
        settings: OperatorSettings,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._settings = settings
        self._ttl = ttl
        self._clock = clock
        self._value: Policy | PolicyError | None = None
        self._at = 0.0
        self._lock = threading.Lock()  # handlers run in a thread pool: one GET per expiry

    def current(self) -> Policy | PolicyError:
        """The policy in force; an error reading the ConfigMap (not its content) propagates,
        so the reconcile fails and is retried rather than falling back to the default."""
        with self._lock:
            now = self._clock()
            if self._value is None or now - self._at >= self._ttl:
                try:
                    self._value = load_policy(self._fetch(), self._settings)
                except PolicyError as exc:
                    self._value = exc
                self._at = now
            return self._value
