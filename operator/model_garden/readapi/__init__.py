"""The read API: JSON over the three kinds (local store or a cluster) and the built dashboard."""

from .app import create_app
from .settings import ReadApiSettings

__all__ = ["ReadApiSettings", "create_app"]
