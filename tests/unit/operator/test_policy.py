"""The admin policy: the default, a ConfigMap's rules, and a broken ConfigMap refusing everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from model_garden.api.finetunejob import FineTuneJobSpec
from model_garden.api.inferencedeployment import InferenceDeploymentSpec
from model_garden.operator.policy import (
    POLICY_KEY,
    Policy,
    PolicyCache,
    PolicyError,
    check_finetunejob,
    check_inferencedeployment,
    image_allowed,
    image_repository,
    load_policy,
    refusals_message,
)
from model_garden.operator.settings import OperatorSettings
from model_garden.operator.vllmflags import flag_name

SETTINGS = OperatorSettings(
    trainer_image="registry.local:5000/mg/trainer:0.2", server_image="ghcr.io/mg/server:0.2"
)
DEFAULT = load_policy(None, SETTINGS)


def installed(text: str) -> Policy:
    return load_policy({"data": {POLICY_KEY: text}}, SETTINGS)


def ftj_spec(**update: Any) -> FineTuneJobSpec:
    spec = {"baseModel": {"hub": {"id": "org/base"}}, "dataset": {"uri": "pvc://data/x.jsonl"}}
    return FineTuneJobSpec.model_validate({**spec, **update})


def idep_spec(**update: Any) -> InferenceDeploymentSpec:
    return InferenceDeploymentSpec.model_validate({"modelVersion": "chat-v1", **update})


def rules(refusals: list[Any]) -> list[tuple[str, str]]:
    return [(r.field, r.rule) for r in refusals]


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("registry.local:5000/mg/trainer:0.3", True),
        ("registry.local:5000/mg/trainer@sha256:" + "a" * 64, True),
        ("registry.local:5000/mg/trainer", True),
        ("registry.local:5000/mg/trainer-evil:1", False),  # prefix only on a name boundary
        ("registry.local:5000/mg/trainerx", False),
        ("ghcr.io/mg/server:latest", True),
        ("docker.io/attacker/trainer:1", False),
    ],
)
def test_default_allows_only_our_own_image_repositories(image: str, allowed: bool) -> None:
    refusals = check_finetunejob(ftj_spec(image=image), DEFAULT)
    assert (refusals == []) is allowed
    if not allowed:
        assert rules(refusals) == [("spec.image", "allowedImagePrefixes")]


def test_image_repository_strips_tag_and_digest_not_a_registry_port() -> None:
    assert (
        image_repository("registry.local:5000/mg/trainer:0.2") == "registry.local:5000/mg/trainer"
    )
    assert image_repository("r:5000/t@sha256:ab") == "r:5000/t"
    assert image_repository("r:5000/t") == "r:5000/t"
    assert image_allowed("reg/team/anything:1", ["reg/team/"])
    assert not image_allowed("reg/teamx/a:1", ["reg/team/"])


EXTRA_ARGS_TABLE = [
    # (extraArgs, expected (index, rule) refusals under the default policy)
    (["--max-num-seqs", "64", "--enforce-eager"], []),
    (["--max-num-seqs=64", "--seed", "-1"], []),  # a negative number is a value
    (["--trust-remote-code"], [(0, "deniedExtraArgs")]),
    (["--trust_remote_code"], [(0, "deniedExtraArgs")]),  # vLLM reads _ as -
    (["--trust-remote"], [(0, "allowedExtraArgs")]),  # an abbreviation argparse would accept
    (["--enforce-eager", "--api-key", "k"], [(1, "deniedExtraArgs")]),
    (["--host=0.0.0.0"], [(0, "deniedExtraArgs")]),
    (["--port", "9000"], [(0, "deniedExtraArgs")]),
    (["--enable-lora"], [(0, "deniedExtraArgs")]),
    (["--worker-extension-cls", "evil.Mod"], [(0, "deniedExtraArgs")]),
    (["-tp", "8"], [(0, "deniedExtraArgs")]),
    (["my-model"], [(0, "allowedExtraArgs")]),  # a positional argument
    (["--some-new-flag"], [(0, "allowedExtraArgs")]),
]


@pytest.mark.parametrize(("args", "expected"), EXTRA_ARGS_TABLE)
def test_default_extra_args(args: list[str], expected: list[tuple[int, str]]) -> None:
    refusals = check_inferencedeployment(idep_spec(engine={"extraArgs": args}), DEFAULT)
    assert rules(refusals) == [(f"spec.engine.extraArgs[{i}]", rule) for i, rule in expected]


def test_refusal_names_field_value_rule_and_configmap() -> None:
    policy = installed("allowedImagePrefixes: [ghcr.io/mg/]\nallowedExtraArgs: ['*']\n")
    spec = idep_spec(engine={"extraArgs": ["--enforce-eager", "--trust-remote-code"]})
    (refusal,) = check_inferencedeployment(spec, policy)
    assert str(refusal).startswith(
        "spec.engine.extraArgs[1] '--trust-remote-code' is not allowed by policy rule "
        "deniedExtraArgs (ConfigMap model-garden-system/model-garden-policy)"
    )
    (default_refusal,) = check_inferencedeployment(spec, DEFAULT)
    assert "(the default policy: no ConfigMap model-garden-system/model-garden-policy)" in str(
        default_refusal
    )


def test_an_allow_list_of_star_still_denies_what_runs_code() -> None:
    policy = installed("allowedImagePrefixes: ['*']\nallowedExtraArgs: ['*']\n")
    spec = idep_spec(engine={"extraArgs": ["--anything", "--middleware", "x.Y"]})
    assert rules(check_inferencedeployment(spec, policy)) == [
        ("spec.engine.extraArgs[1]", "deniedExtraArgs")
    ]
    assert check_finetunejob(ftj_spec(image="docker.io/any/image:1"), policy) == []


TOLERATIONS_TABLE = [
    ([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}], []),
    ([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}], [0]),
    ([{"operator": "Exists"}], [0]),  # no key: every taint
    ([{"key": "nvidia.com/gpu", "operator": "Exists"}, {"key": "spot", "value": "x"}], [1]),
]


@pytest.mark.parametrize(("tolerations", "refused"), TOLERATIONS_TABLE)
def test_default_tolerates_only_gpu_taints(
    tolerations: list[dict[str, Any]], refused: list[int]
) -> None:
    spec = ftj_spec(resources={"tolerations": tolerations})
    assert rules(check_finetunejob(spec, DEFAULT)) == [
        (f"spec.resources.tolerations[{i}].key", "allowedTolerationKeys") for i in refused
    ]
    idep = idep_spec(resources={"tolerations": tolerations})
    assert len(check_inferencedeployment(idep, DEFAULT)) == len(refused)


def test_gpu_limits_count_tensor_parallel_and_replicas() -> None:
    policy = installed("allowedImagePrefixes: []\nmaxGpusPerPod: 4\nmaxGpusPerResource: 8\n")
    assert check_finetunejob(ftj_spec(resources={"gpus": 4}), policy) == []
    assert rules(check_finetunejob(ftj_spec(resources={"gpus": 5}), policy)) == [
        ("spec.resources.gpus", "maxGpusPerPod")
    ]
    # 1 GPU asked, but tensorParallelSize 4 makes it 4 per pod; 3 replicas: 12 in all
    spec = idep_spec(resources={"gpus": 1}, engine={"tensorParallelSize": 4}, replicas=3)
    assert rules(check_inferencedeployment(spec, policy)) == [
        ("spec.resources.gpus", "maxGpusPerResource")
    ]
    spec = idep_spec(resources={"gpus": 1}, engine={"tensorParallelSize": 8})
    assert [r.rule for r in check_inferencedeployment(spec, policy)] == ["maxGpusPerPod"]
    assert check_inferencedeployment(idep_spec(resources={"gpus": 2}, replicas=4), policy) == []
    # the default sets no GPU cap
    assert check_finetunejob(ftj_spec(resources={"gpus": 64}), DEFAULT) == []


def test_output_claims_can_be_restricted() -> None:
    policy = installed("allowedImagePrefixes: []\nallowedOutputClaims: [model-garden-artifacts]\n")
    assert check_finetunejob(ftj_spec(), policy) == []  # the default output claim
    spec = ftj_spec(output={"storage": "pvc://team-data"})
    assert rules(check_finetunejob(spec, policy)) == [
        ("spec.output.storage", "allowedOutputClaims")
    ]
    assert check_finetunejob(spec, DEFAULT) == []


def test_a_model_cache_writes_only_to_an_allowed_claim() -> None:
    policy = installed("allowedImagePrefixes: []\nallowedOutputClaims: [model-cache]\n")
    assert check_inferencedeployment(idep_spec(modelCache="pvc://model-cache/hub"), policy) == []
    spec = idep_spec(modelCache="pvc://model-garden-artifacts/cache")
    assert rules(check_inferencedeployment(spec, policy)) == [
        ("spec.modelCache", "allowedOutputClaims")
    ]
    assert check_inferencedeployment(spec, DEFAULT) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "key policy.yaml: missing"),
        ({POLICY_KEY: "allowedImagePrefixes: [a\n"}, "key policy.yaml: not YAML"),
        ({POLICY_KEY: "- a\n"}, "key policy.yaml: must be a mapping"),
        ({POLICY_KEY: "allowedExtraArgs: []\n"}, "allowedImagePrefixes: Field required"),
        ({POLICY_KEY: "allowedImagePrefixes: []\nmaxGpus: 2\n"}, "maxGpus: Extra inputs"),
        (
            {POLICY_KEY: "allowedImagePrefixes: []\nmaxGpusPerPod: -1\n"},
            "maxGpusPerPod: Input should be greater than or equal to 0",
        ),
    ],
)
def test_a_broken_policy_fails_closed_naming_the_key(data: dict[str, str], expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy({"data": data}, SETTINGS)
    assert "ConfigMap model-garden-system/model-garden-policy" in str(info.value)
    assert expected in str(info.value)
    # every resource is refused while it is broken, even one the default would admit
    (refusal,) = check_finetunejob(ftj_spec(), info.value)
    assert expected in refusal.message()
    assert check_inferencedeployment(idep_spec(), info.value)[0].rule == "valid policy"


def test_settings_name_the_policy_configmap() -> None:
    settings = OperatorSettings(policy_namespace="ops", policy_config_map="mg-policy")
    with pytest.raises(PolicyError, match="ConfigMap ops/mg-policy key policy.yaml"):
        load_policy({"data": {}}, settings)
    assert "no ConfigMap ops/mg-policy" in load_policy(None, settings).source.describe()


def test_flag_names_and_message_of_many_refusals() -> None:
    assert flag_name("--a_b=1") == "--a-b"
    assert flag_name("-1.5") is None and flag_name("value") is None
    spec = idep_spec(engine={"extraArgs": ["--x1", "--x2", "--x3", "--x4", "--x5"]})
    message = refusals_message(check_inferencedeployment(spec, DEFAULT))
    assert message.count("is not allowed") == 3 and message.endswith("; and 2 more")


def test_cache_rereads_after_its_ttl_and_returns_a_broken_policy_as_an_error() -> None:
    now = [0.0]
    body: list[dict[str, Any] | None] = [None]
    calls = []

    def fetch() -> dict[str, Any] | None:
        calls.append(now[0])
        return body[0]

    cache = PolicyCache(fetch, SETTINGS, ttl=10, clock=lambda: now[0])
    first = cache.current()
    assert isinstance(first, Policy) and not first.source.installed
    body[0] = {"data": {POLICY_KEY: "not: [valid"}}
    now[0] = 5
    assert cache.current() is first and calls == [0.0]
    now[0] = 10
    assert isinstance(cache.current(), PolicyError)
    body[0] = {"data": {POLICY_KEY: "allowedImagePrefixes: ['*']"}}
    now[0] = 21
    fixed = cache.current()
    assert isinstance(fixed, Policy) and fixed.source.installed


def test_the_shipped_policy_configmap_is_the_default_policy() -> None:
    """deploy/policy's example parses and says exactly what the operator does without it."""
    path = Path(__file__).resolve().parents[3] / "deploy/policy/model-garden-policy.yaml"
    body = yaml.safe_load(path.read_text())
    settings = OperatorSettings()
    assert (body["metadata"]["namespace"], body["metadata"]["name"]) == (
        settings.policy_namespace,
        settings.policy_config_map,
    )
    shipped = load_policy(body, settings)
    assert shipped.source.installed
    assert shipped.rules == load_policy(None, settings).rules
