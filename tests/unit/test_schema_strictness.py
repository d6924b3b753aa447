"""The models refuse everything the generated schema refuses (issue 8, item 13).

Local mode and the CLI validate with the pydantic models alone, so a rule that lives only in the
CRD would let a resource run locally that the cluster refuses. This test walks every node of
every generated CRD schema and, for every constraint keyword on it (type, enum, pattern,
minimum/maximum, minLength/maxLength, minItems/maxItems, format, required, list-map keys, CEL
rules), builds a document that breaks that one constraint, starting from a valid sample, and
checks the model refuses it. Nothing is listed by hand: a new field or constraint is covered as
soon as the CRD has it.

Every case first checks its *control* (the same document with a valid value in that place) is
accepted, so the refusal is due to the broken constraint and not to how the document was built.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import celpy
import pytest
from pydantic import BaseModel, ValidationError

from harness.invalid_cases import DELETE, FTJ, IDEP, MV, edit, sample
from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.common import describe_errors
from model_garden.api.crdgen import all_crds

MODELS: dict[str, type[BaseModel]] = {
    "FineTuneJob": FineTuneJob,
    "ModelVersion": ModelVersion,
    "InferenceDeployment": InferenceDeployment,
}
# Valid documents to start from: one per exclusive choice (base-model source, what to serve), so
# a constraint inside any branch has a sample where that branch is the one taken.
BASES: dict[str, list[dict[str, Any]]] = {
    "FineTuneJob": [
        FTJ,
        sample("finetunejob-minimal.yaml"),
        edit(
            edit(FTJ, "spec.baseModel.hub", DELETE), "spec.baseModel.modelVersion", {"name": "b-v1"}
        ),
    ],
    "ModelVersion": [MV, sample("modelversion-minimal.yaml")],
    "InferenceDeployment": [IDEP, sample("inferencedeployment-minimal.yaml")],
}
STRINGS = ["a", "pvc://claim/path", "sha256:" + "0" * 64, "0.5", "1", "FRA", "Ready", "a/b", "1Gi"]
NOT_MATCHING = ["", "-", "A B", "!", ".", "x" * 300]
WRONG_TYPE: dict[str, Any] = {
    "string": 5,
    "integer": "5",
    "number": "1.5",
    "boolean": "true",
    "object": "x",
    "array": "x",
}
Path = tuple[str, ...]  # property names, "[]" for an array's first item, "{}" for a map's value


def schema_of(kind: str) -> dict[str, Any]:
    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == kind)
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def nodes(schema: dict[str, Any], path: Path = ()) -> Iterator[tuple[Path, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, (*path, name))
    if "items" in schema:
        yield from nodes(schema["items"], (*path, "[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], (*path, "{}"))


def shown(path: Path) -> str:
    return ".".join(path).replace(".[]", "[]").replace(".{}", "{}") or "<root>"


# --- valid values from a schema ------------------------------------------------------------


def cel_ok(schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` passes the CEL rules on this node (not its children's)."""
    env = celpy.Environment()
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"]:
            continue
        activation = {"self": celpy.json_to_cel(value)}
        if not bool(env.program(env.compile(rule["rule"])).evaluate(activation)):
            return False
    return True


def valid_string(schema: dict[str, Any]) -> str:
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    lo, hi = schema.get("minLength", 0), schema.get("maxLength", 10**6)
    for text in [*STRINGS, "x" * max(lo, 1)]:
        if lo <= len(text) <= hi and re.search(schema.get("pattern", ""), text):
            return text
    raise AssertionError(f"no example string for {schema}: add one to STRINGS")


def example(schema: dict[str, Any]) -> Any:
    """A small valid value for ``schema``: defaults, first enum values, required fields only."""
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema["type"]
    if kind == "string":
        return valid_string(schema)
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return [example(schema["items"]) for _ in range(schema.get("minItems", 0))]
    props = schema.get("properties", {})
    base = {name: example(props[name]) for name in schema.get("required", [])}
    # Cross-field rules (e.g. "set one of …"): add one optional field at a time until they pass.
    for extra in [None, *props]:
        value = dict(base) if extra is None else {**base, extra: example(props[extra])}
        if cel_ok(schema, value):
            return value
    raise AssertionError(f"no example object satisfies the rules of {schema}")


# --- placing a value at a path -------------------------------------------------------------


def place(
    doc: dict[str, Any], schema: dict[str, Any], path: Path, change: Callable[[Any], Any]
) -> dict[str, Any]:
    """A copy of ``doc`` with the node at ``path`` replaced by ``change(current or None)``.

    Missing parents are created from ``example``; ``change`` returning DELETE removes the node.
    """
    out = copy.deepcopy(doc)
    if not path:
        return change(out)  # type: ignore[no-any-return]
    node, sub = out, schema
    for step in path[:-1]:
        node, sub = _descend(node, sub, step)
    last = path[-1]
    if last == "[]":
        if not node:
            node.append(example(sub["items"]))
        key: Any = 0
    elif last == "{}":
        if not node:
            node["key"] = example(sub["additionalProperties"])
        key = next(iter(node))
    else:
        key = last
    present = key in node if isinstance(node, dict) else key < len(node)
    value = change(copy.deepcopy(node[key]) if present else None)
    if value is DELETE:
        if present:
            del node[key]
    else:
        node[key] = value
    return out


def _descend(node: Any, schema: dict[str, Any], step: str) -> tuple[Any, dict[str, Any]]:
    if step == "[]":
        if not node:
            node.append(example(schema["items"]))
        return node[0], schema["items"]
    if step == "{}":
        if not node:
            node["key"] = example(schema["additionalProperties"])
        return node[next(iter(node))], schema["additionalProperties"]
    sub = schema["properties"][step]
    if step not in node:
        node[step] = example(sub)
    return node[step], sub


# --- one case per constraint ---------------------------------------------------------------


@dataclass(frozen=True)
class Constraint:
    kind: str
    path: Path
    keyword: str
    control: Callable[[Any], Any]
    """Keeps the node valid (to check the document around the violation is accepted)."""
    violate: Callable[[Any], Any]

    @property
    def id(self) -> str:
        return f"{self.kind} {shown(self.path)} {self.keyword}"


def keep_or_example(schema: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda current: example(schema) if current is None else current


def constraints_on(kind: str, path: Path, schema: dict[str, Any]) -> Iterator[Constraint]:
    keep = keep_or_example(schema)

    def case(
        keyword: str, violate: Callable[[Any], Any], control: Callable[[Any], Any] = keep
    ) -> Constraint:
        return Constraint(kind, path, keyword, control, violate)

    if path:
        yield case("type", lambda _: WRONG_TYPE[schema["type"]])
    if "enum" in schema:
        yield case("enum", lambda _: "no-such-value")
    if "pattern" in schema:
        bad = next(t for t in NOT_MATCHING if not re.search(schema["pattern"], t))
        yield case("pattern", lambda _: bad)
    if schema.get("format") == "date-time":
        yield case("format", lambda _: "not a date")
    if "minimum" in schema:
        yield case(
            "minimum", lambda _: schema["minimum"] - (1 if schema["type"] == "integer" else 0.5)
        )
    if "maximum" in schema:
        yield case("maximum", lambda _: schema["maximum"] + 1)
    if "minLength" in schema:
        yield case("minLength", lambda _: "a" * (schema["minLength"] - 1))
    if "maxLength" in schema:
        yield case("maxLength", lambda _: "a" * (schema["maxLength"] + 1))
    if "minItems" in schema:
        yield case("minItems", lambda _: [])
    if "maxItems" in schema:
        yield case("maxItems", lambda _: [example(schema["items"])] * (schema["maxItems"] + 1))
    if schema.get("x-kubernetes-list-type") == "map":

        def twice(current: Any) -> list[Any]:
            item = current[0] if current else example(schema["items"])
            return [item, copy.deepcopy(item)]

        yield case("x-kubernetes-list-map-keys", twice)
    for name in schema.get("required", []):
        if path:  # the root's `spec` is required too, but a missing spec is no field of it
            yield Constraint(
                kind,
                (*path, name),
                "required",
                keep_or_example(schema["properties"][name]),
                lambda _: DELETE,
            )
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" not in rule["rule"]:  # transition rules: see test_transition_rules_...
            yield case(f"CEL {rule['rule']!r}", breaking(schema, rule["rule"]))


def all_constraints() -> list[Constraint]:
    found = []
    for kind in MODELS:
        for path, node in nodes(schema_of(kind)):
            found.extend(constraints_on(kind, path, node))
    return found


# --- breaking a CEL rule: search small edits of the node until the rule says no -------------


def edits(value: Any, schema: dict[str, Any], depth: int = 3) -> Iterator[Callable[[Any], Any]]:
    """Single edits inside ``value`` (an object node): drop or add a field, another enum value,
    a flipped boolean, the largest number, the longest valid string — down to ``depth``."""
    if not isinstance(value, dict) or depth == 0:
        return
    props = schema.get("properties", {})
    for name, sub in props.items():
        if name in value and name not in schema.get("required", []):
            yield _at(name, lambda _: DELETE)
        if name not in value:
            yield _at(name, lambda _, sub=sub: example(sub))
            if sub.get("type") in ("integer", "number") and "maximum" in sub:
                yield _at(name, lambda _, m=sub["maximum"]: m)
            for other in [*sub.get("enum", []), *([True] if sub.get("type") == "boolean" else [])]:
                yield _at(name, lambda _, o=other: o)
            continue
        for option in sub.get("enum", []):
            if option != value[name]:
                yield _at(name, lambda _, o=option: o)
        if sub.get("type") == "boolean":
            yield _at(name, lambda v: not v)
        if sub.get("type") in ("integer", "number") and "maximum" in sub:
            yield _at(name, lambda _, m=sub["maximum"]: m)
        if sub.get("type") == "string" and "maxLength" in sub:
            longest = "a" * sub["maxLength"]
            if re.search(sub.get("pattern", ""), longest):
                yield _at(name, lambda _, s=longest: s)
        for inner in edits(value[name], sub, depth - 1):
            yield _at(name, inner)


def _at(name: str, change: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(node: Any) -> Any:
        if not isinstance(node, dict):  # an earlier edit removed it: nothing to change
            return node
        out = dict(node)
        new = change(copy.deepcopy(out.get(name)))
        if new is DELETE:
            out.pop(name, None)
        else:
            out[name] = new
        return out

    return apply


def breaking(schema: dict[str, Any], rule: str) -> Callable[[Any], Any]:
    """An edit of the node that makes ``rule`` false: one edit if one will do, else two."""
    env = celpy.Environment()
    program = env.program(env.compile(rule))

    def violate(current: Any) -> Any:
        node = example(schema) if current is None else current
        singles = list(edits(node, schema))
        tries = itertools.chain(((e,) for e in singles), itertools.combinations(singles, 2))
        for combo in tries:
            changed = node
            for e in combo:
                changed = e(changed)
            try:
                holds = bool(program.evaluate({"self": celpy.json_to_cel(changed)}))
            except celpy.CELEvalError:  # the edit removed what the rule reads: not this rule
                continue
            if not holds:
                return changed
        raise AssertionError(f"no edit of {node} breaks {rule}")

    return violate


# --- the tests -----------------------------------------------------------------------------

CONSTRAINTS = all_constraints()


def refused_by_a_cel_rule(kind: str, doc: dict[str, Any]) -> bool:
    schema = schema_of(kind)
    for path, node in nodes(schema):
        if not node.get("x-kubernetes-validations") or "[]" in path or "{}" in path:
            continue
        value: Any = doc
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if value is not None and not cel_ok(node, value):
            return True
    return False


@pytest.mark.parametrize("constraint", CONSTRAINTS, ids=lambda c: c.id)
def test_the_model_refuses_what_the_schema_refuses(constraint: Constraint) -> None:
    kind, model, schema = constraint.kind, MODELS[constraint.kind], schema_of(constraint.kind)
    controls = [
        (base, place(base, schema, constraint.path, constraint.control)) for base in BASES[kind]
    ]
    accepted = [(base, doc) for base, doc in controls if _accepts(model, doc)]
    if not accepted:
        # The only way to reach this field is through something the schema refuses as a whole
        # (a field behind a CEL rule that refuses its parent whenever it is set): then what holds is that
        # the schema's CEL rule refuses every such document, as the model just did.
        assert all(refused_by_a_cel_rule(kind, doc) for _, doc in controls), (
            f"no valid document reaches {shown(constraint.path)}: {describe(model, controls[0][1])}"
        )
        return
    base, _ = accepted[0]
    broken = place(base, schema, constraint.path, constraint.violate)
    with pytest.raises(ValidationError) as err:
        model.model_validate(broken)
    where = shown(tuple(p for p in constraint.path if p not in ("[]", "{}")))
    if constraint.keyword.startswith("CEL") and not constraint.path:
        return  # a root rule may be reported on any field it reads
    lines = describe_errors(err.value)
    assert any(_names(line, where) for line in lines), lines


def _accepts(model: type[BaseModel], doc: dict[str, Any]) -> bool:
    try:
        model.model_validate(doc)
    except ValidationError:
        return False
    return True


def describe(model: type[BaseModel], doc: dict[str, Any]) -> list[str]:
    try:
        model.model_validate(doc)
    except ValidationError as exc:
        return describe_errors(exc)
    return []


def _names(line: str, where: str) -> bool:
    """Whether an error line is about the field at ``where`` (list indexes dropped; a map's
    key, which ``where`` does not hold, may be any one segment of the line's location)."""
    loc = re.sub(r"\.\d+(?=\.|:)", "", line.split(":")[0])
    parts = where.split(".")
    head = ".".join(parts[:-1]) if parts[-1] in ("{}", "[]") else where
    segments = loc.split(".")
    candidates = [loc] + [".".join(segments[:i] + segments[i + 1 :]) for i in range(len(segments))]
    return any(c.startswith(head) or where.startswith(c) for c in candidates)


def test_every_kind_of_constraint_is_walked() -> None:
    """Guards the walker itself: each keyword the CRDs use yields cases (none silently missed)."""
    keywords = {c.keyword.split(" ")[0] for c in CONSTRAINTS}
    assert {
        "type",
        "enum",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "required",
        "x-kubernetes-list-map-keys",
        "CEL",
    } <= keywords
    used = {
        key
        for kind in MODELS
        for _, node in nodes(schema_of(kind))
        for key in node
        if key
        not in ("type", "description", "default", "properties", "items", "additionalProperties")
    }
    walked = {
        "enum",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "required",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-validations",
    }
    assert used <= walked, f"constraint keywords the walker does not know: {used - walked}"


def test_transition_rules_are_the_only_rules_left_to_the_server() -> None:
    """The models cannot see the old object, so rules on oldSelf (immutability) stay server-side;
    the operator never rewrites a ModelVersion's spec, and local mode keeps versions immutable."""
    transition = [
        (kind, shown(path))
        for kind in MODELS
        for path, node in nodes(schema_of(kind))
        for rule in node.get("x-kubernetes-validations", [])
        if "oldSelf" in rule["rule"]
    ]
    assert transition == [("ModelVersion", "spec")]


@pytest.mark.parametrize(
    ("body", "path", "value"),
    [
        (FTJ, "spec.hyperparameters.epochs", "5"),
        (FTJ, "spec.dataset.packing", "true"),
        (FTJ, "spec.dataset.packing", 1),
        (FTJ, "spec.resources.gpus", True),
        (IDEP, "spec.replicas", "2"),
        (MV, "spec.version", "1"),
    ],
)
def test_no_coercion_the_api_server_would_not_do(
    body: dict[str, Any], path: str, value: Any
) -> None:
    with pytest.raises(ValidationError) as err:
        MODELS[body["kind"]].model_validate(edit(body, path, value))
    assert any(line.startswith(path) for line in describe_errors(err.value))


@pytest.mark.parametrize(
    ("body", "path", "value"),
    [
        (FTJ, "spec.hyperparameters.epochs", 3.0),  # JSON 3.0 is an integer to the server
        (FTJ, "spec.hyperparameters.learningRate", "1e-4"),  # decimals stay strings
        (IDEP, "spec.engine.gpuMemoryUtilization", "1"),
        (IDEP, "spec.engine.gpuMemoryUtilization", ".5"),
    ],
)
def test_what_the_api_server_accepts_still_parses(
    body: dict[str, Any], path: str, value: Any
) -> None:
    MODELS[body["kind"]].model_validate(edit(body, path, value))
