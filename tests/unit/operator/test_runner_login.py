"""kopf's login re-reads the credentials: a rotated token is picked up at the next login (after a 401)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kopf._core.intents.causes import Activity  # kopf's registry of login handlers

from model_garden.operator.metrics import OperatorMetrics
from model_garden.operator.runner import build_registry, client_source, kopf_settings, load_client
from model_garden.operator.settings import OperatorSettings


def _kubeconfig(path: Path, user: dict[str, str]) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True},
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")


def _login_handler(kubeconfig: Path, reload: bool = True) -> Any:
    """The login handler kopf calls at start and after every 401."""
    registry, _ctx = build_registry(
        load_client(kubeconfig),
        OperatorSettings(metrics_port=0, health_port=0),
        OperatorMetrics(),
        reload=client_source(kubeconfig) if reload else None,
    )
    (handler,) = registry._activities.get_handlers(activity=Activity.AUTHENTICATION)
    return handler.fn


def test_login_rereads_a_rotated_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token")
    kubeconfig = tmp_path / "kubeconfig"
    _kubeconfig(kubeconfig, {"tokenFile": str(token_file)})
    login = _login_handler(kubeconfig)
    first = login()
    assert first.token == "first-token" and first.server == "https://127.0.0.1:6443"
    token_file.write_text("rotated-token")  # the kubelet rotates a projected token in place
    assert login().token == "rotated-token"


def test_login_rereads_a_changed_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    _kubeconfig(kubeconfig, {"token": "a"})
    login = _login_handler(kubeconfig)
    assert login().token == "a"
    _kubeconfig(kubeconfig, {"token": "b"})
    assert login().token == "b"
    # without a source to reload from, the client's own credentials (as before)
    assert _login_handler(kubeconfig, reload=False)().token == "b"


def test_kopf_requests_are_bounded_too() -> None:
    settings = kopf_settings(
        OperatorSettings(api_connect_timeout_seconds=4, api_read_timeout_seconds=20)
    )
    assert settings.networking.connect_timeout == settings.watching.connect_timeout == 4
    assert settings.networking.request_timeout == 20
    assert settings.watching.client_timeout == settings.watching.server_timeout + 30
