"""The dashboard in Chromium over real data (conftest.py): every page rendered and screenshotted
(1280 px and phone width), the job's loss curve drawn on its canvas, a streamed chat reply in the
playground, a deployment scaled, a malformed dataset refused with its line number, and axe-core
finding no serious or critical violation on any page.

Tests run in file order: the chat comes before the scale (which stops the served replica).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, ViewportSize, expect

from .conftest import JOB, NAMESPACE, VERSION, Garden, axe_path

pytestmark = [pytest.mark.browser, pytest.mark.ml]

LOSS_COLOR = (0x05, 0x96, 0x69)  # the loss series' stroke (#059669, Chart in JobDetail.svelte)
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
BROKEN_LINE = 3


def deployment_name(garden: Garden) -> str:
    items = garden.api("inferencedeployments").json()["items"]
    (dep,) = [d for d in items if d["spec"]["modelVersion"] == VERSION]
    return str(dep["metadata"]["name"])


def routes(garden: Garden) -> dict[str, str]:
    """Every page of the app: its hash route by a short name."""
    return {
        "overview": "#/",
        "jobs": "#/jobs",
        "job": f"#/jobs/{NAMESPACE}/{JOB}",
        "new-job": "#/jobs/new",
        "versions": "#/versions",
        "version": f"#/versions/{NAMESPACE}/{VERSION}",
        "deployments": "#/deployments",
        "deployment": f"#/deployments/{NAMESPACE}/{deployment_name(garden)}",
        "datasets": "#/datasets",
        "experiments": "#/experiments",
        "carbon": "#/carbon",
        "settings": "#/settings",
    }


def open_app(page: Page, garden: Garden, route: str) -> None:
    """Open the app as the printed URL does (``#token=``), then go to ``route``; wait until the
    page's heading shows and nothing is loading."""
    page.goto(f"{garden.url}/#token={garden.token}")
    expect(page.get_by_test_id("brand")).to_be_visible()
    page.evaluate("route => { location.hash = route; }", route)
    settle(page)


def settle(page: Page) -> None:
    expect(page.locator("main h1").first).to_be_visible(timeout=20_000)
    expect(page.get_by_test_id("loading")).to_have_count(0, timeout=30_000)


def console_errors(page: Page) -> list[str]:
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            where = msg.location.get("url") if msg.location else None
            errors.append(f"{msg.text} ({where})" if where else msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def test_every_page_renders_at_desktop_and_phone_width(
    page: Page, garden: Garden, artifacts: Path
) -> None:
    errors = console_errors(page)
    pages = routes(garden)
    for width, viewport in (("1280", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        for name, route in pages.items():
            open_app(page, garden, route)
            expect(page.get_by_test_id("error"), f"{name}: error state").to_have_count(0)
            assert "Page not found" not in page.locator("main h1").first.inner_text(), name
            page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{name} at {width}: {overflow}px wider than the viewport"
    assert errors == []
    shots = sorted(p.name for p in artifacts.glob("*.png"))
    assert len(shots) >= 2 * len(pages), shots


def test_overview_counts_the_real_run_and_the_served_deployment(page: Page, garden: Garden) -> None:
    open_app(page, garden, "#/")
    expect(page.get_by_test_id("overview-serving")).to_have_text("1")
    expect(page.get_by_test_id("overview-versions")).to_have_text("1")
    expect(page.locator("main").get_by_role("link", name=JOB)).to_be_visible()


def _series_pixels(page: Page, selector: str, rgb: tuple[int, int, int]) -> dict[str, int]:
    """Pixels of ``selector``'s canvases: painted (alpha > 0) and of the colour ``rgb``."""
    counted: dict[str, int] = page.evaluate(
        """([selector, rgb]) => {
          let painted = 0, series = 0;
          for (const canvas of document.querySelectorAll(selector)) {
            const ctx = canvas.getContext('2d');
            const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            for (let i = 0; i < d.length; i += 4) {
              if (d[i + 3] === 0) continue;
              painted++;
              const dist = Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1]) + Math.abs(d[i + 2] - rgb[2]);
              if (dist < 60 && d[i + 3] > 128) series++;
            }
          }
          return {painted, series};
        }""",
        [selector, list(rgb)],
    )
    return counted


def test_job_loss_curve_is_drawn(page: Page, garden: Garden, artifacts: Path) -> None:
    history = garden.api(f"finetunejobs/{NAMESPACE}/{JOB}/history").json()
    losses = [p["loss"] for p in history["points"] if p.get("loss") is not None]
    assert len(losses) >= 2, history  # the real run logged its loss
    open_app(page, garden, f"#/jobs/{NAMESPACE}/{JOB}")
    chart = page.get_by_test_id("job-loss-chart")
    expect(chart.locator("canvas")).to_have_count(1, timeout=20_000)
    expect(page.get_by_test_id("job-loss-chart-summary")).not_to_be_empty()
    page.wait_for_timeout(300)  # uPlot draws on the next animation frame
    pixels = _series_pixels(page, '[data-testid="job-loss-chart"] canvas', LOSS_COLOR)
    chart.screenshot(path=str(artifacts / "job-loss-chart.png"))
    assert pixels["painted"] > 1000, pixels  # axes, grid and curves
    assert pixels["series"] > 100, pixels  # the loss line itself, in its colour


def test_chat_in_the_playground_streams_a_reply(
    page: Page, garden: Garden, artifacts: Path
) -> None:
    open_app(page, garden, f"#/deployments/{NAMESPACE}/{deployment_name(garden)}")
    # greedy: a barely trained tiny model sampled at a temperature may stop at once
    page.get_by_test_id("chat-temperature").fill("0")
    page.get_by_test_id("chat-input").fill("Describe the pets. a red cat")
    with page.expect_response(lambda r: "/chat/completions" in r.url) as answered:
        page.get_by_test_id("chat-send").click()
    response = answered.value
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    expect(page.get_by_test_id("chat-message-user")).to_have_text("Describe the pets. a red cat")
    reply = page.get_by_test_id("chat-message-assistant").last
    expect(reply).not_to_be_empty(timeout=120_000)
    expect(page.get_by_test_id("chat-send")).to_have_text("Send", timeout=180_000)  # stream ended
    expect(page.get_by_test_id("chat-error")).to_have_count(0)
    # The server's event stream, passed through unchanged: several chunks, then [DONE]; the
    # reply on the page is their deltas put together.
    events = [
        line.removeprefix("data:").strip()
        for line in response.text().splitlines()
        if line.startswith("data:")
    ]
    assert events and events[-1] == "[DONE]", events[-3:]
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 2 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    shown = reply.inner_text()
    assert text.strip() and shown.split() == text.split(), (text, shown)
    page.screenshot(path=str(artifacts / "deployment-chat.png"), full_page=True)


def test_scale_a_deployment(page: Page, garden: Garden) -> None:
    name = deployment_name(garden)
    open_app(page, garden, f"#/deployments/{NAMESPACE}/{name}")
    expect(page.get_by_test_id("deployment-replicas")).to_contain_text("of 1")
    page.get_by_test_id("scale-input").fill("0")
    page.get_by_test_id("scale-submit").click()
    expect(page.get_by_test_id("scale-message")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("scale-error")).to_have_count(0)
    expect(page.get_by_test_id("deployment-replicas")).to_contain_text("of 0")
    stored = garden.api(f"inferencedeployments/{NAMESPACE}/{name}").json()
    assert stored["spec"]["replicas"] == 0
    # Without the token (a fresh tab that never saw the URL's #token=), the write is refused.
    page.evaluate("() => sessionStorage.clear()")
    page.reload()
    settle(page)
    page.get_by_test_id("scale-input").fill("1")
    page.get_by_test_id("scale-submit").click()
    expect(page.get_by_test_id("scale-error")).to_be_visible(timeout=30_000)
    assert garden.api(f"inferencedeployments/{NAMESPACE}/{name}").json()["spec"]["replicas"] == 0


def test_a_malformed_dataset_is_refused_with_its_line_number(
    page: Page, garden: Garden, artifacts: Path, tmp_path: Path
) -> None:
    rows = [
        json.dumps({"instruction": f"Name pet {i}.", "input": "", "output": f"Pet {i}"})
        for i in range(6)
    ]
    rows[BROKEN_LINE - 1] = '{"instruction": "Describe the pets.", "input": '
    broken = tmp_path / "broken-pets.jsonl"
    broken.write_text("\n".join(rows) + "\n")
    before = garden.api("datasets", params={"namespace": NAMESPACE}).json()["items"]
    open_app(page, garden, "#/datasets")
    page.get_by_test_id("dataset-upload-input").set_input_files(str(broken))
    with page.expect_response(
        lambda r: "/datasets/" in r.url and r.request.method == "POST"
    ) as sent:
        page.get_by_test_id("dataset-upload-submit").click()
    assert sent.value.status == 422
    expect(page.get_by_test_id("dataset-upload-errors")).to_be_visible()
    expect(page.get_by_test_id("dataset-upload-error").first).to_contain_text(
        f"line {BROKEN_LINE}:"
    )
    page.screenshot(path=str(artifacts / "datasets-upload-refused.png"), full_page=True)
    after = garden.api("datasets", params={"namespace": NAMESPACE}).json()["items"]
    assert after == before  # nothing stored
    assert not any("broken" in d["name"] for d in after)


def _axe(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(axe_path()))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_any_page(
    page: Page, garden: Garden, scheme: str
) -> None:
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    found = {}
    for name, route in routes(garden).items():
        open_app(page, garden, route)
        bad = _axe(page)
        if bad:
            found[name] = [
                f"{v['id']} ({v['impact']}): {v['help']} — "
                + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:3])
                for v in bad
            ]
    assert found == {}, json.dumps(found, indent=1)
