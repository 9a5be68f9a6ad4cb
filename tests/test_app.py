"""The Gradio app through its named API endpoints (gradio_client), and its handlers, on the tiny checkpoint set."""

from __future__ import annotations

import re
import socket
import time
import zipfile
from pathlib import Path

import av
import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from vino_app.export import read_settings
from vino_app.studio import ModelSource, Studio
from vino_app.tasks import TASKS, read_task_file
from vino_app.ui import StudioUI
from vino_app.ui.record import NAMES, settings_from, values_from

# task, frames, side, aspect, steps, text CFG, image CFG, shift, seed, negative prompt ("Release defaults" left out)
FAST_IMAGE = ["auto", 1, 64, "1:1", 2, 4.0, 1.0, 3.0, 3, ""]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(pipe, tiny_root, tmp_path_factory):
    studio = Studio(
        pipe, ModelSource.from_folder(tiny_root, "tiny", "tiny test weights", "world"), tmp_path_factory.mktemp("out")
    )
    demo = StudioUI(studio).build()
    demo.queue(default_concurrency_limit=1, max_size=8)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_port=free_port(), max_file_size="5mb", quiet=True)
    yield Client(url, verbose=False), studio
    demo.close()


def slots(*paths) -> list[dict]:
    return [{"image": handle_file(str(p)), "caption": None} for p in paths]


def resend(gallery: list[dict]) -> list[dict]:
    """A gallery returned by the app, ready to send back."""
    return slots(*[item["image"] for item in gallery])


def settings(**changes) -> list:
    """Every control value, in `record.NAMES` order (a raw HTTP call must send them all)."""
    names = ["task", "frames", "side", "aspect", "steps", "cfg", "image_cfg", "shift", "seed", "negative", "release",
             "cache", "attention"]
    values = dict(zip(names, [*FAST_IMAGE, False, "off", "native"])) | changes
    return [values[n] for n in names]


def test_every_action_has_a_named_endpoint(app):
    client, _ = app
    named = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    expected = {"/add_images", "/move_earlier", "/move_later", "/remove_image", "/check_references", "/check_video",
                "/estimate", "/apply_preset", "/random_seed", "/rewrite", "/generate", "/cancel", "/cfg_grid",
                "/reuse_settings", "/switch_profile"}
    assert expected <= named


def test_generate_image_with_settings_embedded_and_sidecar(app, media):
    client, _ = app
    gallery = client.predict(slots(media["square"], media["wide"]), api_name="/add_images")
    assert [item["caption"] for item in gallery] == ["Image 1", "Image 2"]
    prompt = "Put the colour of Image 1 on Image 2"
    status, image, video, downloads = client.predict(
        prompt, resend(gallery), None, *settings(task="ti2i_base", image_cfg=2.0), api_name="/generate"
    )
    assert status.startswith("Done: ti2i")
    assert image["visible"] is True and video["visible"] is False  # one result component shown
    image = image["value"]
    assert Image.open(image).size == (80, 48)  # the base image's (last image's) size at area 64^2
    embedded = read_settings(image)
    assert embedded["request"]["caption"] == prompt and embedded["settings"]["base_image"] is True
    assert (embedded["settings"]["guidance_scale"], embedded["settings"]["shift"]) == (4.0, 3.0)  # as sent
    sidecar = next(Path(d) for d in downloads if d.endswith(".json"))
    spec = read_task_file(sidecar)[0]
    assert (spec.task, spec.caption, spec.base_image, len(spec.image_paths)) == ("ti2i", prompt, True, 2)
    bundle = next(d for d in downloads if d.endswith(".zip"))
    names = zipfile.ZipFile(bundle).namelist()
    assert not [n for n in names if n.endswith(".zip")] and any(n.endswith(".png") for n in names)  # not itself
    stems = {Path(d).stem for d in downloads}  # one descriptive name: task, seed, date and time
    assert len(stems) == 1 and re.fullmatch(r"vino-ti2i_base-seed3-\d{8}-\d{6}-[0-9a-f]{4}", stems.pop()), downloads


def test_generate_video_is_browser_playable_h264(app, media):
    client, _ = app
    status, image, video, _ = client.predict(
        "Turn Video 1 blue",
        [],
        handle_file(str(media["video"])),
        *settings(frames=5, cfg=7.0, shift=7.0),
        api_name="/generate",
    )
    assert status.startswith("Done: tv2v") and image["visible"] is False  # the empty image box is hidden
    assert video["visible"] is True  # an update that also shows the video player
    with av.open(video["value"]) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert sum(1 for _ in container.decode(stream)) == 5


def test_cfg_grid_contact_sheet_and_cells(app, media):
    client, _ = app
    status, sheet, sheet_video, cells = client.predict(
        "3, 7",
        "1, 2",
        "Image 1 in the rain",
        slots(media["square"]),
        None,
        *settings(task="ti2i"),
        api_name="/cfg_grid",
    )
    assert status.startswith("Done: 4 cells") and sheet_video["visible"] is False
    sheet = sheet["value"]
    assert [c["caption"] for c in cells] == [
        "text 3 / image 1",
        "text 3 / image 2",
        "text 7 / image 1",
        "text 7 / image 2",
    ]
    cell = np.asarray(Image.open(cells[0]["image"]))
    sheet = np.asarray(Image.open(sheet))
    # 2 x 2 tiles, enlarged and labelled
    assert sheet.shape[0] > 2 * cell.shape[0] and sheet.shape[1] > 2 * cell.shape[1]
    # same seed and inputs: the two cells with text CFG 3 and 7 differ only by the guidance
    assert not np.array_equal(cell, np.asarray(Image.open(cells[2]["image"])))


def test_cancel_stops_within_a_step_and_app_keeps_serving(app):
    client, studio = app
    job = client.submit("a red circle", [], None, *settings(steps=100, frames=41, side=256), api_name="/generate")
    deadline = time.time() + 60
    while studio._running is None and time.time() < deadline:
        time.sleep(0.05)
    assert client.predict(api_name="/cancel").startswith("Cancelling")
    status, *_ = job.result(timeout=60)  # an ending, not an error
    assert re.fullmatch(r"Cancelled after step \d+ of 100\.", status), status
    status, *_ = client.predict("a red circle", [], None, *settings(), api_name="/generate")
    assert status.startswith("Done: t2i")


def test_reference_check_and_renumbering(app, media):
    client, _ = app
    gallery = client.predict(slots(media["square"], media["wide"]), api_name="/add_images")
    report = client.predict("Put Image 3 next to image_1", resend(gallery), None, api_name="/check_references")
    assert (
        "Image 3" in report
        and "error" in report
        and "Image_1".lower() in report.lower()
        and "Image 2 is attached but" in report
    )
    with pytest.raises(AppError, match="Image 3"):
        client.predict("Put Image 3 next to Image 1", resend(gallery), None, *settings(), api_name="/generate")
    moved, prompt, selected = client.predict(
        resend(gallery), 0, "Put the hat from Image 1 on Image 2", api_name="/move_later"
    )
    assert prompt == "Put the hat from Image 2 on Image 1" and selected == 1
    assert moved["selected_index"] == 1  # the highlight follows the moved picture
    assert Image.open(moved["value"][0]["image"]).size == Image.open(media["wide"]).size
    left, prompt, selected = client.predict(resend(moved["value"]), 0, prompt, api_name="/remove_image")
    assert len(left["value"]) == 1 and prompt == "Put the hat from Image 1 on the removed image"
    assert selected is None and left["selected_index"] is None  # nothing stale selected


@pytest.fixture()
def bad_files(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.png"
    junk.write_bytes(np.random.default_rng(0).bytes(2000))
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(bomb)  # 81 megapixels in a few kilobytes
    no_frames = tmp_path / "no_frames.mp4"
    with av.open(str(no_frames), "w", format="matroska") as container:  # a video track with no frames in it
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    return {"empty": empty, "junk": junk, "bomb": bomb, "no_frames": no_frames}


def test_bad_uploads_are_clear_errors_and_the_next_request_is_served(app, media, bad_files):
    client, _ = app
    gallery = client.predict(
        slots(bad_files["empty"], media["square"], bad_files["junk"], bad_files["bomb"]), api_name="/add_images"
    )
    assert len(gallery) == 1  # the good image is kept, the three bad ones dropped with a warning
    for name, text in (("empty", "is empty"), ("junk", "is not an image"), ("bomb", "megapixels")):
        with pytest.raises(AppError, match=text):
            client.predict("Image 1 at night", slots(bad_files[name]), None, *settings(), api_name="/generate")
    with pytest.raises(AppError, match="no frames"):
        client.predict(handle_file(str(bad_files["no_frames"])), api_name="/check_video")
    with pytest.raises(AppError, match="no_frames.mp4"):
        client.predict(
            "Turn Video 1 red", [], handle_file(str(bad_files["no_frames"])), *settings(frames=5), api_name="/generate"
        )
    with pytest.raises(AppError, match="4k\\+1|nearest valid"):
        client.predict("a red circle", [], None, *settings(frames=6), api_name="/generate")
    status, *_ = client.predict("Image 1 at night", resend(gallery), None, *settings(), api_name="/generate")
    assert status.startswith("Done: ti2i")


def test_presets_fill_controls_and_reuse_settings_round_trip(app):
    client, studio = app
    for preset in studio.presets:
        prompt, gallery, video, info, task, frames, *_ = client.predict(preset.key, api_name="/apply_preset")
        assert (
            prompt == preset.instruction
            and len(gallery) == len(preset.images)
            and (video is not None) == (preset.video is not None)
        )
        assert (task, frames) == (preset.settings.task, preset.settings.num_frames)
    _, image, _, _ = client.predict("a red circle", [], None, *settings(seed=1234, cfg=3.5), api_name="/generate")
    prompt, _, _, *controls, preset, preset_info, note = client.predict(
        handle_file(image["value"]), api_name="/reuse_settings"
    )
    shown = dict(zip(NAMES, controls))
    assert (prompt, shown["seed"], shown["guidance_scale"], shown["num_inference_steps"], shown["side"]) == (
        "a red circle", 1234, 3.5, 2, 64
    )
    assert shown["release_defaults"] is False and note.startswith("Settings and")
    assert preset is None and preset_info == ""  # the preset label no longer names a preset


def test_errors_are_escaped_and_a_gpu_profile_on_cpu_is_refused_without_losing_the_model(app, media):
    client, studio = app
    with pytest.raises(AppError) as error:
        client.predict("<b>3</b>", "1", "Image 1", slots(media["square"]), None, *settings(), api_name="/cfg_grid")
    assert "&lt;b&gt;3&lt;/b&gt;" in str(error.value) and "<b>" not in str(error.value)
    with pytest.raises(AppError, match="needs a CUDA GPU"):
        client.predict("24gb", api_name="/switch_profile")
    assert studio.profile_name == "cpu"
    status, *_ = client.predict("a red circle", [], None, *settings(), api_name="/generate")
    assert status.startswith("Done: t2i")


def test_uploads_over_the_size_limit_are_refused(app, tmp_path):
    client, _ = app
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(6 * 1024 * 1024))  # over the 5 MB limit the fixture launched with
    with pytest.raises(Exception, match="(?i)exceed|too large|maximum|413"):
        client.predict(slots(big), api_name="/add_images")
    status, *_ = client.predict("a red circle", [], None, *settings(), api_name="/generate")
    assert status.startswith("Done: t2i")


def engine_calls(studio, monkeypatch) -> list[dict]:
    """The keyword arguments of every `VinoPipeline.__call__` from here on."""
    seen = []
    real = studio.pipe.__class__.__call__

    def spy(pipe, *args, **kwargs):
        seen.append(kwargs)
        return real(pipe, *args, **kwargs)

    monkeypatch.setattr(studio.pipe.__class__, "__call__", spy)
    return seen


def test_release_defaults_send_the_releases_values(app, monkeypatch):
    client, studio = app
    seen = engine_calls(studio, monkeypatch)
    for frames, release in ((1, 5.0), (5, 7.0)):
        request = settings(frames=frames, release=True, steps=2)  # the steps are the release's 50 too
        status, image, video, _ = client.predict("a red circle", [], None, *request, api_name="/generate")
        media = (video if frames > 1 else image)["value"]
        embedded = read_settings(media)["settings"]
        sent = (embedded["guidance_scale"], embedded["shift"], embedded["num_inference_steps"])
        assert sent == (release, release, 50), status
        assert (seen[-1]["guidance_scale"], seen[-1]["shift"], seen[-1]["num_frames"]) == (release, release, frames)
    shown = dict(zip(NAMES, values_from(settings_from([*FAST_IMAGE[:1], 9, *FAST_IMAGE[2:], True]), 0, False)))
    assert (shown["guidance_scale"], shown["shift"], shown["release_defaults"]) == (7.0, 7.0, True)


def test_speed_options_reach_the_engine_through_generate(app, monkeypatch):
    client, studio = app
    seen = engine_calls(studio, monkeypatch)
    status, image, *_ = client.predict("a red circle", [], None, *settings(cache="faster"), api_name="/generate")
    assert status.startswith("Done: t2i") and seen[-1]["cache"] == "faster"
    assert read_settings(image["value"])["settings"]["studio"]["cache"] == "faster"
    _, _, _, *controls, _, _, _ = client.predict(handle_file(image["value"]), api_name="/reuse_settings")
    assert dict(zip(NAMES, controls))["cache"] == "faster"
    with pytest.raises(AppError, match="cache must be one of off, fast, faster; got .*warp"):
        client.predict("a red circle", [], None, *settings(cache="warp"), api_name="/generate")
    with pytest.raises(AppError, match="attention must be one of .*; got .*flash"):  # not offered on this machine
        client.predict("a red circle", [], None, *settings(attention="flash"), api_name="/generate")
    offered = StudioUI(studio).attention_choices()["choices"]  # what the page offers once it has loaded
    assert offered == studio.attention_backends and offered[0] == "native" and "flash" not in offered


def test_an_empty_rewrite_says_why(app, monkeypatch):
    client, studio = app
    monkeypatch.setattr(studio, "rewrite", lambda *args: "  ")
    with pytest.raises(AppError, match="empty caption"):
        client.predict("a red circle", [], None, api_name="/rewrite")
    monkeypatch.setattr(studio, "rewrite", lambda *args: "A red circle on black.")
    assert client.predict("a red circle", [], None, api_name="/rewrite") == "A red circle on black."


def streamed_events(studio, monkeypatch, interval_s: float, steps: int) -> list:
    """The events of a 64x64 t2i generation whose progress and previews are sent at most every `interval_s`."""
    monkeypatch.setattr(studio, "preview_interval_s", interval_s)
    ui = StudioUI(studio)
    ui.status_interval_s = interval_s
    return list(ui.generate("a red circle", [], None, settings_from(settings(steps=steps, side=64))))


def test_generation_streams_a_progress_bar_and_a_preview(app, monkeypatch):
    events = streamed_events(app[1], monkeypatch, interval_s=0.0, steps=3)
    statuses = [e[0] for e in events]
    assert statuses[0].endswith(": starting…") and statuses[-1].startswith("Done: t2i")
    for step, status in enumerate(statuses[1:-1], start=1):
        assert f'<progress class="job-progress" value="{step}" max="3">' in status and f"step {step} of 3…" in status
        assert re.search(r"\d+\.\d s elapsed · about \d+\.\d s left", status), status
    previews = [e[1]["value"] for e in events[1:-2]]  # every step but the last, which the result follows
    assert all(isinstance(p, np.ndarray) and p.shape == (64, 64, 3) for p in previews)  # shown in the result pane
    assert events[0][1]["visible"] is True and events[0][2]["visible"] is False  # the old video result is hidden


def test_every_preset_is_listed(app):
    client, studio = app
    config = client.config
    dropdown = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "preset")
    assert [choice[1] for choice in dropdown["props"]["choices"]] == [p.key for p in studio.presets]
    assert sorted(p.settings.task for p in studio.presets) == sorted(TASKS)  # one for each of the nine tasks


def test_the_progress_bar_is_sent_at_most_once_per_interval(app, monkeypatch):
    events = streamed_events(app[1], monkeypatch, interval_s=3600.0, steps=6)
    bars = [re.search(r'value="(\d+)" max="6"', e[0]) for e in events]
    assert [int(bar.group(1)) for bar in bars if bar] == [0]  # the start; the result came within the interval
    assert events[-1][0].startswith("Done: t2i")


def test_attaching_references_that_do_not_fit_the_preset_clears_its_label(app):
    follow = StudioUI(app[1]).follow_inputs
    image = [(str(Path(__file__).resolve().parents[1] / "assets" / "examples" / "hat.png"), "Image 1")]
    assert follow("t2i", image, None) == ("auto", None, "")  # a t2i preset plus an image: no longer that preset
    task, label, note = follow("ti2i", image, None)
    assert task == "ti2i" and label == note == gr.update()  # still fits: the preset stays named
    assert follow("t2v", [], None)[0] == "t2v"


def test_a_reload_restores_the_last_inputs_kept_in_the_browser_and_refuses_hostile_ones(app, tmp_path):
    """`restore` (on page load) takes the draft the page kept in the browser: its instruction and settings, its
    references only when they are the studio's files (others named to attach again); a draft that is not a valid
    request gives the default preset instead."""
    studio = app[1]
    ui = StudioUI(studio)
    key = studio.presets[0].key
    controls = settings(steps=3, side=64)
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (64, 64)).save(outside)
    draft = ui.draft("Make Image 1 blue", [(str(outside), "Image 1")], None, *controls)
    prompt, gallery, video, *shown, preset, info, note = ui.restore(key, draft)
    assert prompt == "Make Image 1 blue" and gallery == [] and video is None  # not a file the studio owns
    assert shown[NAMES.index("num_inference_steps")] == 3 and preset is None and info == ""
    assert note.startswith("Restored your last instruction and settings.") and "elsewhere.png" in note
    preset_view = ui.restore(key, None)
    assert preset_view[0] == studio.presets[0].instruction and preset_view[-3] == key
    bad_steps = settings(steps=10**9)
    for hostile in ("junk", {"prompt": 3}, {**draft, "controls": bad_steps}, {**draft, "images": "x"}):
        assert ui.restore(key, hostile) == preset_view
