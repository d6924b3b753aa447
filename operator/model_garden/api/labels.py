"""The names every piece shares: API group and plurals, label and annotation keys, finalizers.

One place, so the operator's builders, its watches and the tests agree on every key. Children
carry the *uid* of their owner (``*_UID`` labels): a resource deleted and recreated under the
same name must never adopt the children of its predecessor.
"""

from __future__ import annotations

from .common import API_VERSION, GROUP, VERSION

__all__ = [
    "ANNOTATION_CONFIG_HASH",
    "ANNOTATION_EVALUATION",
    "ANNOTATION_OPERATIONS_CARBON",
    "ANNOTATION_VERSION",
    "API_VERSION",
    "FIELD_MANAGER",
    "FINALIZER_IN_USE",
    "FINETUNEJOBS",
    "GROUP",
    "INFERENCEDEPLOYMENTS",
    "LABEL_COMPONENT",
    "LABEL_EXPERIMENT",
    "LABEL_FTJ",
    "LABEL_FTJ_UID",
    "LABEL_IDEP",
    "LABEL_IDEP_UID",
    "LABEL_KUEUE_QUEUE",
    "LABEL_MODEL",
    "LABEL_MV",
    "LABEL_MV_UID",
    "MANAGED_BY",
    "MODELVERSIONS",
    "OPERATOR_NAME",
    "VERSION",
]

FINETUNEJOBS = "finetunejobs"
MODELVERSIONS = "modelversions"
INFERENCEDEPLOYMENTS = "inferencedeployments"

MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR_NAME = "model-garden-operator"
FIELD_MANAGER = OPERATOR_NAME
LABEL_COMPONENT = "app.kubernetes.io/component"

LABEL_FTJ = "modelgarden.dev/fine-tune-job"
LABEL_FTJ_UID = "modelgarden.dev/fine-tune-job-uid"
LABEL_MODEL = "modelgarden.dev/model"
LABEL_MV = "modelgarden.dev/model-version"
LABEL_MV_UID = "modelgarden.dev/model-version-uid"
LABEL_IDEP = "modelgarden.dev/inference-deployment"
LABEL_IDEP_UID = "modelgarden.dev/inference-deployment-uid"
LABEL_EXPERIMENT = "modelgarden.dev/experiment"
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"

ANNOTATION_VERSION = "modelgarden.dev/model-version"
ANNOTATION_CONFIG_HASH = "modelgarden.dev/config-hash"
ANNOTATION_EVALUATION = "modelgarden.dev/evaluation"
ANNOTATION_OPERATIONS_CARBON = "modelgarden.dev/operations-carbon"
"""On a ModelVersion: the carbon of the operations the CLI ran on it (export, evaluation,
batch), as JSON ``{kind: OperationCarbon}``; the reconciler adds it to the version's totals."""
"""On a ModelVersion: the latest ``mg eval`` (an Evaluation as JSON). Users may write metadata,
not status: the reconciler checks it and makes it status.evaluation."""
FINALIZER_IN_USE = "modelgarden.dev/in-use-protection"
