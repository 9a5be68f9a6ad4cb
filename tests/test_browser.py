"""The studio in a real browser: the app command as a subprocess on the tiny model, driven by headless Chromium
through Playwright. It takes the docs screenshots too, into a temporary folder unless asked for them on purpose:
`VINO_SCREENSHOT_DIR=docs/screenshots python -m pytest tests/test_browser.py` regenerates `docs/screenshots/*.png`.

Chromium is Debian's (`apt-get install chromium`, which `.ci/run` does); `playwright install` is never needed. Without
a Chromium binary the tests are skipped, except under `CI=true`, where a missing browser fails them.
"""

from __future__ import annotations

import io
import json
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
import zipfile
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
    for candidate in (
        os.environ.get("CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
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
                    state = (
                        f"exited with {process.returncode}"
                        if process.poll() is not None
                        else f"did not answer in {START_TIMEOUT_S} s"
                    )
                    pytest.fail(
                        f"the app {state}; its log:\n{log_path.read_text(errors='replace')[-6000:]}", pytrace=False
                    )
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
    """A fresh tab on the studio, its default preset loaded: the browser's storage of the studio (history, inputs as
    last edited, which a reload restores) is emptied first, on a light page of the same origin."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(app_url + "config")
    page.evaluate("() => localStorage.clear()")
    page.goto(app_url)
    expect(page.locator("#prompt textarea")).not_to_have_value("", timeout=UI_TIMEOUT_MS)  # the preset has loaded
    yield page
    page.close()


def screenshot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / name), animations="disabled", caret="hide")  # what a 1400x1000 window shows


def add_two_images(page) -> None:
    from playwright.sync_api import expect

    page.locator("#images input[type=file]").set_input_files(
        [str(EXAMPLES / "hat.png"), str(EXAMPLES / "portrait.png")]
    )
    expect(page.locator("#images .caption-label")).to_have_text(["Image 1", "Image 2"])
    shown = page.locator("#images .grid-wrap").bounding_box()  # each thumbnail and its number in view, unscrolled
    for thumbnail in page.locator("#images .thumbnail-item").all():
        box = thumbnail.bounding_box()
        assert box["y"] + box["height"] <= shown["y"] + shown["height"] and box["height"] < shown["height"], box
    # the default preset's t2i no longer fits: the task turns to auto and the preset label stops naming it
    expect(page.locator("#task input")).to_have_value("auto")
    expect(page.locator("#preset input")).to_have_value("")


# Steps of the progress test: the most the page allows, so that even on a fast machine the run (about 10 ms a step
# for the tiny model at 64x64) outlasts the first progress update (0.25 s) and the first preview (0.5 s).
PROGRESS_STEPS = 100


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


def set_number(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def record_changes(page) -> None:
    """Keep every status text and every result-image source the page shows, in `window.seen` / `window.sources`."""
    page.evaluate("""() => {
        window.seen = []; window.sources = [];
        const status = document.querySelector('#status'), result = document.querySelector('#result-image');
        new MutationObserver(() => window.seen.push(status.innerHTML))
            .observe(status, {subtree: true, childList: true, characterData: true});
        new MutationObserver(() => { const img = result.querySelector('img'); if (img) window.sources.push(img.src); })
            .observe(result, {subtree: true, childList: true, attributes: true});
    }""")


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"]


def no_error_badge(page) -> None:
    """No component carries Gradio's red "Error" mark (errors go to the message area and the toast)."""
    from playwright.sync_api import expect

    expect(page.locator("[data-testid=status-tracker]").get_by_text("Error", exact=True)).to_have_count(0)


def choose_preset(page, name: str) -> None:
    page.locator("#preset input").click()
    page.get_by_role("option", name=name, exact=True).click()


def run_to_done(page) -> None:
    from playwright.sync_api import expect

    page.locator("#generate").click()
    expect(page.locator("#status")).to_contain_text("Done:", timeout=RUN_TIMEOUT_MS)


def test_generate_shows_progress_a_preview_and_the_result(page):
    from playwright.sync_api import expect

    # Generate and Cancel stay in view wherever the page is scrolled
    for scroll in ("0", "document.body.scrollHeight / 2", "document.body.scrollHeight"):
        page.evaluate(f"window.scrollTo(0, {scroll})")
        assert in_view(page, "#generate") and in_view(page, "#cancel"), scroll
    page.evaluate("window.scrollTo(0, 0)")
    add_two_images(page)
    fast_settings(page, steps=PROGRESS_STEPS)
    # a chip inserts its name at the cursor
    before = "Put the hat from "
    write_instruction(page, before + "on the person in Image 2")
    page.locator("#prompt textarea").evaluate(
        f"box => {{ box.focus(); box.setSelectionRange({len(before)}, {len(before)}); }}"
    )
    page.get_by_role("button", name="Image 1", exact=True).click()
    expect(page.locator("#prompt textarea")).to_have_value(INSTRUCTION)
    expect(page.locator("#ref-check .ok")).to_be_visible()
    record_changes(page)
    run_to_done(page)
    expect(page.locator("#status")).to_contain_text("ti2i")

    # while it ran: a progress bar with the step count, elapsed and remaining time, and previews in the result pane
    seen = page.evaluate("window.seen")
    bars = [re.search(rf'<progress class="job-progress" value="(\d+)" max="{PROGRESS_STEPS}">', html) for html in seen]
    values = {int(bar.group(1)) for bar in bars if bar}
    assert 0 in values and values & set(range(1, PROGRESS_STEPS)), seen  # the start, then steps (at most every 0.25 s)
    step_line = rf"s elapsed · about [\d.]+ s left</span> · Job \w+: step \d+ of {PROGRESS_STEPS}"
    assert any(re.search(step_line, html) for html in seen), seen
    sources = page.evaluate("window.sources")
    assert any(src.endswith(".webp") for src in sources), sources  # previews (the final result is the PNG)

    # shown: the final PNG alone, enlarged with sharp pixels; the video player hidden
    image = page.locator("#result-image img")
    expect(image).to_have_attribute("src", re.compile(r"\.png$"), timeout=UI_TIMEOUT_MS)
    image.evaluate("img => img.decode()")
    expect(page.locator("#result-video")).to_be_hidden()
    expect(image).to_have_css("image-rendering", "pixelated")
    natural, shown = image.evaluate("img => [img.naturalWidth, img.getBoundingClientRect().width]")
    assert natural == 64 and shown >= 4 * natural, (natural, shown)
    assert "Cancelled" not in page.locator("#status").inner_text()

    # downloadable at native size: media with settings, sidecar and a zip that does not hold itself
    links = page.locator("#downloads a[download]")
    expect(links).to_have_count(3)
    names = [link.get_attribute("download") for link in links.all()]  # unique, descriptive: task, seed, time
    assert all(re.fullmatch(r"vino-ti2i-seed\d+-\d{8}-\d{6}-[0-9a-f]{4}\.(png|json|zip)", n) for n in names), names
    assert len({Path(n).stem for n in names}) == 1 and len(set(names)) == 3, names
    png = page.request.get(page.locator('#downloads a[download$=".png"]').get_attribute("href"))
    assert png.ok and png.body().startswith(b"\x89PNG"), png.body()[:16]
    assert png.body()[16:24] == (64).to_bytes(4, "big") * 2  # the PNG's own 64 x 64 pixels
    bundle = page.request.get(page.locator('#downloads a[download$=".zip"]').get_attribute("href"))
    names = zipfile.ZipFile(io.BytesIO(bundle.body())).namelist()
    assert not [n for n in names if n.endswith(".zip")] and any(n.endswith(".png") for n in names), names
    no_error_badge(page)
    screenshot(page, "main.png")


def test_cancel_ends_with_cancelled_after_step_k(page):
    from playwright.sync_api import expect

    set_number(page, "steps", 100)
    set_number(page, "side", 256)  # 16x the default preset's tokens: the run outlasts the click even on an idle machine
    page.locator("#generate").click()
    expect(page.locator("#status")).to_contain_text(re.compile(r"step \d+ of 100"), timeout=RUN_TIMEOUT_MS)
    page.locator("#cancel").click()
    expect(page.locator("#status")).to_have_text(
        re.compile(r"^\s*Cancelled after step \d+ of 100\.\s*$"), timeout=RUN_TIMEOUT_MS
    )
    expect(page.locator("#status progress")).to_have_count(0)  # no stale step text or bar
    no_error_badge(page)
    expect(page.get_by_test_id("toast-body")).to_have_count(0)


def test_gallery_selection_follows_earlier_later_and_remove(page):
    from playwright.sync_api import expect

    add_two_images(page)
    write_instruction(page, "Put the hat from Image 1 on the person in Image 2")
    slots = page.locator("#images .thumbnail-item")
    buttons = [page.locator(f"#{name}") for name in ("earlier", "later", "remove")]
    for button in buttons:
        expect(button).to_be_disabled()  # nothing selected yet
    expect(page.locator("#images .thumbnail-item img").first).to_have_css("object-fit", "contain")
    hat = slots.nth(0).locator("img").get_attribute("src").rsplit("/", 1)[1]
    slots.nth(0).click()
    expect(slots.nth(0)).to_have_class(re.compile(r"\bselected\b"))
    for button in buttons:
        expect(button).to_be_enabled()
    buttons[1].click()  # Later
    expect(page.locator("#prompt textarea")).to_have_value("Put the hat from Image 2 on the person in Image 1")
    expect(slots.nth(1)).to_have_class(re.compile(r"\bselected\b"))  # the highlight moved with the picture
    expect(slots.nth(0)).not_to_have_class(re.compile(r"\bselected\b"))
    assert slots.nth(1).locator("img").get_attribute("src").endswith("/" + hat)
    expect(page.locator("#images .caption-label")).to_have_text(["Image 1", "Image 2"])
    buttons[0].click()  # Earlier: back
    expect(slots.nth(0)).to_have_class(re.compile(r"\bselected\b"))
    buttons[2].click()  # Remove
    expect(slots).to_have_count(1)
    expect(page.locator("#images .thumbnail-item.selected")).to_have_count(0)  # nothing stale selected
    expect(page.locator("#prompt textarea")).to_have_value(
        "Put the hat from the removed image on the person in Image 1"
    )
    expect(buttons[2]).to_be_disabled()
    buttons[2].click(force=True)  # a second Remove does nothing
    page.wait_for_timeout(500)
    expect(slots).to_have_count(1)
    no_error_badge(page)


def test_video_result_loops_with_controls_reuse_clears_the_preset_and_a_reload_keeps_the_history(page):
    from playwright.sync_api import expect

    choose_preset(page, "Text to video")
    expect(page.locator("#frames input[type=number]")).to_have_value("9")
    release = page.locator("#release-defaults input")
    release.check()
    # the release's values for a chosen video task, not editable while the box is on
    for name, value in (("frames", "85"), ("steps", "50"), ("cfg", "7"), ("image-cfg", "1"), ("shift", "7")):
        expect(page.locator(f"#{name} input[type=number]")).to_have_value(value, timeout=UI_TIMEOUT_MS)
        expect(page.locator(f"#{name} input[type=range]")).to_be_disabled(timeout=UI_TIMEOUT_MS)
    release.uncheck()
    expect(page.locator("#steps input[type=range]")).to_be_enabled(timeout=UI_TIMEOUT_MS)
    set_number(page, "frames", 9)
    set_number(page, "steps", 2)
    # the speed options: step cache and the attention backends this machine runs
    page.locator("#speed").get_by_text("Speed").click()
    page.locator("#attention input").click()
    offered = [t.replace("✓", "").strip() for t in page.get_by_role("option").all_inner_texts()]
    assert offered[0] == "native" and "flash" not in offered, offered  # a CPU machine
    page.keyboard.press("Escape")
    page.locator("#cache input").click()
    page.get_by_role("option", name="fast", exact=True).click()
    run_to_done(page)
    expect(page.locator("#status")).to_contain_text("t2v, 9 frame(s) of 64x64 (0.38 s at 24 fps, looping)")
    expect(page.locator("#result-image")).to_be_hidden()  # no empty image box above the video
    video = page.locator("#result-video video")
    expect(video).to_be_visible()
    expect(video).to_have_css("image-rendering", "pixelated")  # 64x64 enlarged with sharp pixels
    page.wait_for_function("document.querySelector('#result-video video').readyState >= 1")
    loop, autoplay, duration = video.evaluate("v => [v.loop, v.autoplay, v.duration]")
    assert loop and autoplay and duration > 0, (loop, autoplay, duration)
    page.locator("#result-video").hover()
    expect(page.locator("#result-video").get_by_role("button").first).to_be_visible()  # the player's controls
    # without the player's whole seconds ("0:00 / 0:00" for 0.38 s): the status gives the length
    expect(page.locator("#result-video progress")).to_be_visible()
    expect(page.get_by_text("0:00 / 0:00").filter(visible=True)).to_have_count(0)
    screenshot(page, "video.png")

    page.get_by_role("tab", name="History").click()
    item = page.locator("#history .thumbnail-item")
    expect(item).to_have_count(1)
    expect(page.locator("#history video").first).to_have_css("object-fit", "contain")
    item.first.click()
    expect(page.locator("#history .thumbnail-item.selected")).to_have_count(1)
    expect(page.get_by_text("0:00 / 0:00").filter(visible=True)).to_have_count(0)  # nor in the history
    page.get_by_text('"task": "t2v"').first.wait_for()
    page.locator("#reuse").click()
    expect(page.locator("#status")).to_contain_text("reused")
    expect(page.locator("#preset input")).to_have_value("")  # the settings are no longer the preset's
    expect(page.locator("#release-defaults input")).not_to_be_checked()  # 2 steps are not the release's
    expect(page.locator("#steps input[type=number]")).to_have_value("2")
    expect(page.locator("#cache input")).to_have_value("fast")  # the speed option came back too
    no_error_badge(page)

    draft = page.evaluate("() => localStorage.getItem('vino-studio-draft')")  # the inputs as kept in the browser
    set_number(page, "seed", 7)
    page.wait_for_function("before => localStorage.getItem('vino-studio-draft') !== before", arg=draft)
    prompt = page.locator("#prompt textarea").input_value()
    page.reload()  # the history and the inputs are kept in the browser: a reload loses nothing
    expect(page.locator("#status")).to_contain_text("Restored your last instruction and settings")
    expect(page.locator("#prompt textarea")).to_have_value(prompt)
    expect(page.locator("#steps input[type=number]")).to_have_value("2")
    expect(page.locator("#seed input")).to_have_value("7")
    page.locator("#speed").get_by_text("Speed").click()  # the accordion is closed again
    expect(page.locator("#cache input")).to_have_value("fast")
    expect(page.locator("#preset input")).to_have_value("")
    page.get_by_role("tab", name="History").click()
    expect(page.locator("#history .thumbnail-item")).to_have_count(1)
    page.locator("#history .thumbnail-item").first.click()
    page.get_by_text('"task": "t2v"').first.wait_for()
    no_error_badge(page)


def test_every_preset_is_offered(page):
    names = [json.loads(path.read_text())["name"] for path in sorted((REPO / "presets" / "world").glob("*.json"))]
    page.locator("#preset input").click()
    options = page.get_by_role("option")
    offered = [text.replace("✓", "").strip() for text in options.all_inner_texts()]  # the chosen one is ticked
    assert offered == names and len(names) == 9  # one for each task


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
    for field in ("#images", "#prompt", "#task", "#steps"):  # no input carries an error mark
        expect(page.locator(field).get_by_text("Error", exact=True)).to_have_count(0)
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
