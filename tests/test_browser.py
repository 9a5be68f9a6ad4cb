"""The studio in a real browser: the app command as a subprocess on the tiny model, driven by headless Chromium
through Playwright. It takes the docs screenshots too, into a temporary folder unless asked for them on purpose:
`VINO_SCREENSHOT_DIR=docs/screenshots python -m pytest tests/test_browser.py` regenerates `docs/screenshots/*.png`.

Chromium is Debian's (`apt-get install chromium`, which `.ci/run` does); `playwright install` is never needed. Without
a Chromium binary the tests are skipped, except under `CI=true`, where a missing browser fails them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "assets" / "examples"
SHOTS = Path(os.environ.get("VINO_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="vino-screenshots-"))
IN_CI = os.environ.get("CI", "").lower() == "true"
START_TIMEOUT_S = 120
RUN_TIMEOUT_MS = 90_000  # one generation or one CFG grid on the tiny model
UI_TIMEOUT_MS = 20_000  # anything else the page does
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
INSTRUCTION = "Put the hat from Image 1 on the person in Image 2"
BAD_INSTRUCTION = "Put the hat from Image 1 on the person in Image 3"


def chromium_binary() -> str | None:
    """Debian's Chromium (or `CHROMIUM=/path`)."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser test must run; .ci/run installs Debian's chromium)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        missing("no Chromium binary (install Debian's: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("the playwright package is not installed (pip install -r requirements.txt)")
    return binary


@pytest.fixture(scope="module")
def app_url(chromium, tmp_path_factory):
    """`python app.py --model tiny --port N` from the repository root, until the module's tests are done."""
    root = tmp_path_factory.mktemp("browser-app")
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VINO_CACHE_DIR": str(root / "cache"),
        "VINO_OUTPUT_DIR": str(root / "outputs"),
        "GRADIO_TEMP_DIR": str(root / "gradio"),  # its own upload cache: another app closing cannot delete its files
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = root / "app.log"
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--model", "tiny", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    state = f"exited with {process.returncode}" if process.poll() is not None else f"did not answer in {START_TIMEOUT_S} s"
                    pytest.fail(f"the app {state}; its log:\n{log_path.read_text(errors='replace')[-6000:]}", pytrace=False)
                time.sleep(0.25)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="vino-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,  # a fresh user-data-dir
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh tab on the studio, its default preset loaded."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(app_url)
    expect(page.locator("#prompt textarea")).not_to_have_value("", timeout=UI_TIMEOUT_MS)  # the preset has loaded
    yield page
    page.close()


def screenshot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True, animations="disabled", caret="hide")


def add_two_images(page) -> None:
    from playwright.sync_api import expect

    page.locator("#images input[type=file]").set_input_files([str(EXAMPLES / "hat.png"), str(EXAMPLES / "portrait.png")])
    expect(page.locator("#images .caption-label")).to_have_text(["Image 1", "Image 2"])


def fast_settings(page, steps: int = 4) -> None:
    """Few steps (the tiny model at side 64 then takes a few seconds). The task needs no setting: the default
    preset's "t2i" turns to "auto" by itself once images are attached."""
    from playwright.sync_api import expect

    expect(page.locator("#task input")).to_have_value("auto")
    page.locator("#steps input[type=number]").fill(str(steps))
    page.locator("#steps input[type=number]").press("Enter")
    expect(page.locator("#steps input[type=range]")).to_have_value(str(steps))


def write_instruction(page, text: str) -> None:
    page.locator("#prompt textarea").fill(text)


def test_generate_shows_and_downloads_the_result(page):
    from playwright.sync_api import expect

    add_two_images(page)
    fast_settings(page)
    # a chip inserts its name at the cursor
    before = "Put the hat from "
    write_instruction(page, before + "on the person in Image 2")
    page.locator("#prompt textarea").evaluate(f"box => {{ box.focus(); box.setSelectionRange({len(before)}, {len(before)}); }}")
    page.get_by_role("button", name="Image 1", exact=True).click()
    expect(page.locator("#prompt textarea")).to_have_value(INSTRUCTION)
    expect(page.locator("#ref-check .ok")).to_be_visible()
    page.locator("#generate").click()
    expect(page.locator("#status")).to_contain_text("Done:", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("ti2i")

    # shown: the final PNG (previews during the run are WebP), loaded
    image = page.locator("#result-image img")
    expect(image).to_have_attribute("src", re.compile(r"\.png$"), timeout=UI_TIMEOUT_MS)
    image.evaluate("img => img.decode()")
    assert image.evaluate("img => img.naturalWidth") > 0

    # downloadable: media with settings, sidecar and zip; the PNG link answers PNG bytes
    links = page.locator("#downloads a[download]")
    expect(links).to_have_count(3)
    png = page.locator('#downloads a[download$=".png"]')
    expect(png).to_have_count(1)
    response = page.request.get(png.get_attribute("href"))
    assert response.ok, response.status
    assert response.body().startswith(b"\x89PNG"), response.body()[:16]
    screenshot(page, "main.png")


def test_reference_check_and_generate_error(page):
    from playwright.sync_api import expect

    add_two_images(page)
    fast_settings(page)
    write_instruction(page, BAD_INSTRUCTION)
    error = page.locator("#ref-check .error")
    expect(error).to_be_visible()
    expect(error).to_contain_text('"Image 3"')
    expect(error).to_contain_text("2 images attached")

    page.locator("#generate").click()
    toast = page.get_by_test_id("toast-body").filter(has_text="Image 3")
    expect(toast).to_be_visible()
    expect(toast).to_have_class(re.compile(r"\berror\b"))
    expect(toast).to_have_css("opacity", "1")
    screenshot(page, "error.png")

    # fixing the name clears the error
    write_instruction(page, INSTRUCTION)
    expect(page.locator("#ref-check .ok")).to_be_visible()
    expect(page.locator("#ref-check .error")).to_have_count(0)


def test_cfg_grid(page):
    from playwright.sync_api import expect

    add_two_images(page)
    fast_settings(page, steps=2)
    write_instruction(page, INSTRUCTION)
    page.get_by_role("tab", name="Compare CFG").click()
    page.locator("#text-cfg-values textarea, #text-cfg-values input").fill("3, 7")
    page.locator("#image-cfg-values textarea, #image-cfg-values input").fill("1, 2")
    page.locator("#grid").click()
    expect(page.locator("#status")).to_contain_text("Done: 4 cells", timeout=RUN_TIMEOUT_MS)
    sheet = page.locator("#sheet img")
    expect(sheet).to_be_visible()
    sheet.evaluate("img => img.decode()")
    assert sheet.evaluate("img => img.naturalWidth") > 0
    expect(page.locator("#cells .caption-label")).to_have_count(4)
    screenshot(page, "cfg-grid.png")
