"""Constrained field types shared by the resources: names, decimals, URIs, list-maps, strictness.

Each type carries its rule twice, once for the generated schema (``pattern``, list-map
extensions) and once for the model (a validator with a sentence a person can act on), so the
API server and local mode refuse the same values (tests/unit/test_schema_strictness.py).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

# Kubernetes object names: DNS-1123 label (most names, label values), DNS-1123 subdomain
# (ConfigMaps, claims, Secrets), DNS-1035 label (Services: no leading digit).
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL = rf"^{_LABEL}$"
DNS_SUBDOMAIN = rf"^{_LABEL}(\.{_LABEL})*$"
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
LABEL_MAX = 63
SUBDOMAIN_MAX = 253
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
"""A Kubernetes label value (at most 63 characters)."""
# Fractions in spec are strings (no floats in spec, per the API conventions).
DECIMAL_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$"
POSITIVE_DECIMAL_PATTERN = (
    r"^([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)([eE][-+]?[0-9]+)?$"
)
"""A decimal whose digits are not all zero (so the API server refuses ``"0"`` as the model does)."""
FRACTION_PATTERN = r"^(0+(\.[0-9]*)?|0*\.[0-9]+)$"
"""[0, 1) without an exponent: ``0``, ``0.05``, ``.5``."""
UNIT_FRACTION_PATTERN = r"^(1(\.0*)?|0*\.[0-9]*[1-9][0-9]*)$"
"""(0, 1] without an exponent: ``0.9``, ``.5``, ``1``; never ``0`` or ``5``."""
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"


def scalar_type(annotation: Any) -> Any:
    """The one scalar type behind ``X | None`` / ``Annotated[X, ...]``, or None for anything else."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return scalar_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return scalar_type(args[0]) if len(args) == 1 else None
    if origin is Literal:
        return str
    if isinstance(annotation, type) and issubclass(annotation, bool | int | float | str | datetime):
        return annotation
    return None


def scalar_error(annotation: Any, value: Any) -> str | None:
    """Why the API server would refuse ``value`` for a field typed ``annotation`` (None: it accepts).

    Pydantic's lax mode turns ``"5"`` into 5, ``"yes"`` into True and 1700000000 into a date; the
    API server refuses each (``integer``, ``boolean`` and ``string`` are distinct JSON types).
    Full strict mode would go too far: it also refuses enum values and timestamps given as
    strings, and 3.0 for an integer, all of which the server accepts.
    """
    kind = scalar_type(annotation)
    if kind is None or value is None:
        return None
    if issubclass(kind, bool):
        return None if isinstance(value, bool) else "must be a boolean (true or false, unquoted)"
    if issubclass(kind, int | float) and not issubclass(kind, Enum):
        if isinstance(value, str | bytes | bool):
            what = "an integer" if issubclass(kind, int) else "a number"
            return f"must be {what}, not {type(value).__name__} {value!r}"
        return None
    if isinstance(value, bool | int | float):  # str, StrEnum, datetime: JSON strings
        return f"must be a string, not {type(value).__name__} {value!r}"
    return None


def _matches(pattern: str, explain: str) -> Callable[[Any], Any]:
    """A before-validator that refuses a string not matching ``pattern`` with a sentence."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.match(value):
            raise ValueError(f"{value!r} {explain}")
        return value

    return check


PositiveDecimal = Annotated[
    str,
    Field(pattern=POSITIVE_DECIMAL_PATTERN),
    BeforeValidator(_matches(POSITIVE_DECIMAL_PATTERN, "must be a decimal above 0, e.g. '2e-4'")),
]
"""A positive decimal written as a string, e.g. ``"2e-4"`` (learning rate, budgets)."""

Fraction = Annotated[
    str,
    Field(pattern=FRACTION_PATTERN),
    BeforeValidator(_matches(FRACTION_PATTERN, "must be a decimal in [0, 1), e.g. '0.05'")),
]
"""A fraction in [0, 1) written as a string, e.g. ``"0.05"`` (dropout, eval split)."""

UnitFraction = Annotated[
    str,
    Field(pattern=UNIT_FRACTION_PATTERN),
    BeforeValidator(_matches(UNIT_FRACTION_PATTERN, "must be a decimal in (0, 1], e.g. '0.9'")),
]
"""A share in (0, 1] written as a string, e.g. ``"0.9"`` (GPU memory utilization)."""

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]
"""A Kubernetes resource quantity such as ``"8Gi"`` or ``"500m"``."""

_SEGMENT = r"([^/.][^/]*|\.([^/.][^/]*)?|\.\.[^/]+)?"
"""A path segment other than ``..`` (RE2 has no lookahead): a claim path never leaves its claim."""
_PVC = rf"pvc://{_LABEL}(\.{_LABEL})*(/{_SEGMENT})*"
PVC_OR_FILE_URI_PATTERN = rf"^({_PVC}|file://.+)$"
URI_PATTERN = rf"^({_PVC}|s3://.+|file://.+)$"
"""``pvc://<claim>/<path>`` (the claim a DNS-1123 subdomain, no ``..`` in the path), ``s3://…``
or ``file://…``."""


def _claim_fits(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("pvc://"):
        claim = value.removeprefix("pvc://").split("/", 1)[0]
        if len(claim) > SUBDOMAIN_MAX:
            raise ValueError(
                f"claim name {claim[:20]!r}… is longer than {SUBDOMAIN_MAX} characters"
            )
    return value


_CLAIM_HELP = "is not pvc://<claim>/<path> (claim: lowercase letters, digits, '-' and '.'; no '..' in the path)"

StorageUri = Annotated[
    str,
    Field(pattern=URI_PATTERN),
    BeforeValidator(_claim_fits),
    BeforeValidator(_matches(URI_PATTERN, f"{_CLAIM_HELP}, s3://<bucket>/<path> or file://<path>")),
]
"""Where files are: ``pvc://<claim>/<path>``, ``s3://<bucket>/<path>`` or ``file://<path>``."""

PVC_URI_PATTERN = rf"^{_PVC}$"

ClaimUri = Annotated[
    str,
    Field(pattern=PVC_URI_PATTERN),
    BeforeValidator(_claim_fits),
    BeforeValidator(_matches(PVC_URI_PATTERN, _CLAIM_HELP)),
]
"""A folder on a PersistentVolumeClaim of the resource's namespace: ``pvc://<claim>/<path>``."""

_HF = r"hf://[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?@[^\s@/][^\s@]*"
HF_URI_PATTERN = rf"^{_HF}$"
"""``hf://<org>/<name>@<revision>``: a Hugging Face Hub repository at a revision (required, so
what was verified is what is served)."""
ARTIFACT_URI_PATTERN = rf"^({_PVC}|s3://.+|file://.+|{_HF})$"

ArtifactUri = Annotated[
    str,
    Field(pattern=ARTIFACT_URI_PATTERN),
    BeforeValidator(_claim_fits),
    BeforeValidator(
        _matches(
            ARTIFACT_URI_PATTERN,
            f"{_CLAIM_HELP}, s3://<bucket>/<path>, file://<path> or hf://<org>/<name>@<revision>",
        )
    ),
]
"""Where a ModelVersion's weights are: a :data:`StorageUri`, or a Hub repository at a revision
(an imported model, downloaded and verified by the pod that needs it)."""

LocalUri = Annotated[
    str,
    Field(pattern=PVC_OR_FILE_URI_PATTERN),
    BeforeValidator(_claim_fits),
    BeforeValidator(_matches(PVC_OR_FILE_URI_PATTERN, f"{_CLAIM_HELP} or file://<dir>")),
]
"""Where a pod can write: ``pvc://<claim>[/<path>]`` or ``file://<dir>``."""


class ListMap:
    """Marks a list the API server treats as a map keyed by ``keys`` (``x-kubernetes-list-type: map``).

    The server refuses two items with the same keys and merges server-side-applied lists item by
    item; the model refuses duplicates too. Use as ``Annotated[list[Item], ListMap("name")]``.
    """

    def __init__(self, *keys: str) -> None:
        self.keys = keys

    def _unique(self, items: list[Any]) -> list[Any]:
        seen: set[tuple[Any, ...]] = set()
        for item in items:
            key = tuple(getattr(item, k) for k in self.keys)
            if key in seen:
                shown = ", ".join(
                    f"{to_camel(k)}={v!r}" for k, v in zip(self.keys, key, strict=True)
                )
                raise ValueError(f"two entries have {shown}; each must be unique")
            seen.add(key)
        return items

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._unique, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        out = dict(handler(schema))
        out["x-kubernetes-list-type"] = "map"
        out["x-kubernetes-list-map-keys"] = [to_camel(k) for k in self.keys]
        return out
