"""The env a pod needs to reach S3: from a Secret, by secretKeyRef, never a value in a spec.

One shape for the three kinds: ``spec.storageSecret`` names a Secret in the resource's namespace
whose keys are the AWS SDK's own variable names, so a Secret made for KServe, KubeAI or the AWS
CLI (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, optionally ``AWS_SESSION_TOKEN``,
``AWS_ENDPOINT_URL`` for MinIO/Ceph/moto, ``AWS_DEFAULT_REGION``) works as it is. The two keys
are required (kubelet then refuses to start a pod whose Secret lacks them, with an event that
names the key); the others are optional.
"""

from __future__ import annotations

from typing import Any

REQUIRED_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
OPTIONAL_KEYS = ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
SECRET_ENV = REQUIRED_KEYS + OPTIONAL_KEYS


def s3_env(secret: str | None, hub: bool = False) -> list[dict[str, Any]]:
    """Container env entries feeding the AWS variables from ``secret`` (none without a Secret:
    the pod then uses its own identity, e.g. IRSA or an instance role); with ``hub``, also an
    optional HF_TOKEN (a gated hf:// artifact)."""
    if not secret:
        return []
    keys = SECRET_ENV + (("HF_TOKEN",) if hub else ())
    return [
        {
            "name": key,
            "valueFrom": {
                "secretKeyRef": {"name": secret, "key": key, "optional": key not in REQUIRED_KEYS}
            },
        }
        for key in keys
    ]
