"""Settings of the read API (``MODEL_GARDEN_READAPI_*`` environment variables, or arguments)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReadApiSettings(BaseSettings):
    """What the app needs beyond its source."""

    model_config = SettingsConfigDict(
        env_prefix="MODEL_GARDEN_READAPI_", extra="ignore", populate_by_name=True
    )

    token: str | None = Field(
        default=None, description="Local mode: the bearer token writes need (None: no writes)."
    )
    prometheus_url: str | None = Field(
        default=None, description="Prometheus base URL: history from query_range when set."
    )
    artifacts_dir: Path | None = Field(
        default=None,
        validation_alias="MODEL_GARDEN_ARTIFACTS_DIR",
        description="Cluster mode: where the artifacts claim is mounted (dataset uploads).",
    )
    watch_namespaces: str | None = Field(
        default=None,
        description=(
            "Cluster mode: comma-separated namespaces to watch (an identity with Roles in them"
            " only); default: every namespace."
        ),
    )
    static_dir: Path | None = Field(
        default=None, description="The built dashboard [default: the package's static/]."
    )
    ping_seconds: float = Field(default=15.0, gt=0, description="SSE keep-alive comment period.")
    access_cache_seconds: float = Field(
        default=30.0, ge=0, description="How long a SelfSubjectAccessReview answer is reused."
    )
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, gt=0, description="Upload cap.")
    chat_timeout_seconds: float = Field(default=300.0, gt=0, description="Chat proxy timeout.")

    def watched(self) -> list[str] | None:
        names = [n.strip() for n in (self.watch_namespaces or "").split(",") if n.strip()]
        return names or None
