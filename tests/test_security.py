"""The studio under hostile input and load, driven through the running app (gradio_client and raw HTTP to
127.0.0.1) on the tiny checkpoint set: files, jobs, values, videos, API surface and logs (docs/security.md)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from vino_app.errors import GenerationCancelled
from vino_app.export import save_mp4, save_png
from vino_app.studio import ModelSource, Studio
from vino_app.studio.limits import MAX_PROMPT_CHARS
from vino_app.ui import API_GUARD, StudioUI

from .test_app import free_port, settings, slots

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "app.py"  # the file an attacker tries to read back
QUEUE_SIZE = 3
LONG_JOB = {"steps": 100, "frames": 41, "side": 256}


@pytest.fixture(scope="module")
def app(pipe, tiny_root, tmp_path_factory):
    studio = Studio(
        pipe, ModelSource.from_folder(tiny_root, "tiny", "tiny test weights", "world"), tmp_path_factory.mktemp("out")
    )
    demo = StudioUI(studio).build()
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    _, url, _ = demo.launch(
        prevent_thread_lock=True, server_port=free_port(), quiet=True, show_error=True, app_kwargs=API_GUARD
    )
    yield Client(url, verbose=False), studio, url
    demo.close()


def fn_index(url: str, api_name: str) -> int:
    deps = httpx.get(url + "config").json()["dependencies"]
    return next(d["id"] for d in deps if d["api_name"] == api_name)


def returned_bytes(value) -> list[bytes]:
    """The bytes of every file an endpoint's answer points to (gradio_client downloaded them)."""
    if isinstance(value, dict):
        return [b for v in value.values() for b in returned_bytes(v)]
    if isinstance(value, (list, tuple)):
        return [b for v in value for b in returned_bytes(v)]
    if isinstance(value, str) and value.startswith("/") and Path(value).is_file():
        return [Path(value).read_bytes()]
    return []


def wait_until(condition, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    assert condition(), "timed out"


def no_server_path(text: str) -> bool:
    return str(ROOT) not in text and "/tmp/" not in text and not re.search(r"(?<![\w.:/])/(?:[\w.-]+/)+", text)


# ---------------------------------------------------------------------------------------------------------- files


def attacks(tmp_path: Path) -> dict[str, Path]:
    """Reuse files that name the app's source by absolute and relative path, in each format the studio reads."""
    names = [str(TARGET), "../../../app.py", "..\\..\\app.py"]
    sidecar = tmp_path / "sidecar.json"
    sidecar.write_text(json.dumps([{"caption": "steal it", "ref_image_paths": names, "ref_video_path": str(TARGET)}]))
    request = {"caption": "steal it", "image_paths": names, "video_path": str(TARGET)}
    embedded = {"request": request, "settings": {"studio": {"seed": 7, "num_inference_steps": 3, "side": 64}}}
    png = save_png(np.zeros((16, 16, 3), np.uint8), tmp_path / "chunk.png", embedded)
    mp4 = save_mp4(np.zeros((1, 16, 16, 3), np.uint8), tmp_path / "comment.mp4", embedded)
    return {"sidecar": sidecar, "png": png, "mp4": mp4}


@pytest.mark.parametrize("kind", ["sidecar", "png", "mp4"])
def test_a_reuse_file_naming_the_apps_source_never_returns_it(app, tmp_path, kind):
    client, _, _ = app
    prompt, gallery, video, *controls, note = client.predict(
        handle_file(str(attacks(tmp_path)[kind])), api_name="/reuse_settings"
    )
    assert prompt == "steal it" and gallery == [] and video is None  # settings and prompt kept, no reference read
    assert TARGET.read_bytes() not in returned_bytes([prompt, gallery, video, controls, note])
    assert "attach the references again" in note and "app.py" in note and no_server_path(note)
    if kind != "sidecar":
        assert (controls[4], controls[8]) == (3, 7)  # steps and seed from the embedded settings


def test_a_file_path_injected_into_the_api_is_refused(app):
    _, _, url = app
    forged = {"image": {"path": str(TARGET), "meta": {"_type": "gradio.FileData"}}, "caption": None}
    answer = httpx.post(url + "gradio_api/call/add_images", json={"data": [[forged]]})
    assert answer.status_code == 200
    events = httpx.get(url + f"gradio_api/call/add_images/{answer.json()['event_id']}", timeout=30).text
    assert "event: error" in events and TARGET.read_text()[:200] not in events


# ----------------------------------------------------------------------------------------------------------- jobs


@pytest.fixture()
def watched(app, monkeypatch):
    """Spy on the studio: how many generations run at once (at most), steps done, and how each job ended."""
    _, studio, _ = app
    record = {"active": 0, "peak": 0, "steps": 0, "ended": []}
    lock = threading.Lock()
    real_run, real_generate = studio.run, studio._run

    def generate(job, on_step, label):
        def step(*args):
            record["steps"] += 1
            on_step(*args)

        with lock:
            record["active"] += 1
            record["peak"] = max(record["peak"], record["active"])
        try:
            return real_generate(job, step, label)
        finally:
            with lock:
                record["active"] -= 1

    def run(*args, **kwargs):
        try:
            result = real_run(*args, **kwargs)
        except GenerationCancelled:
            record["ended"].append("cancelled")
            raise
        record["ended"].append("done")
        return result

    monkeypatch.setattr(studio, "_run", generate)
    monkeypatch.setattr(studio, "run", run)
    return record


def start_long_job(url: str, session: str) -> httpx.Response:
    """Join the queue with a long generation under `session` (raw HTTP, as a browser does)."""
    data = ["a red circle", [], None, *settings(**LONG_JOB)]
    body = {
        "data": data,
        "fn_index": fn_index(url, "generate"),
        "session_hash": session,
        "event_data": None,
        "trigger_id": None,
    }
    return httpx.post(url + "gradio_api/queue/join", json=body)


def test_a_caller_without_session_cancels_only_with_the_jobs_id(app, watched):
    client, studio, url = app
    assert start_long_job(url, "owner-session").status_code == 200
    status = []
    with httpx.stream("GET", url + "gradio_api/queue/data?session_hash=owner-session", timeout=60) as stream:
        for line in stream.iter_lines():
            if not status and (job := re.search(r"Job (\w+): step \d+ of", line)):  # its first step shown
                status.append(job.group(1))
                # no session, no handle / a wrong handle / another session: nothing is cancelled
                for data in ([""], ["0123456789ab"]):
                    assert httpx.post(url + "gradio_api/run/cancel", json={"data": data}).json()["data"] == [
                        "Nothing of yours is running."
                    ]
                assert client.predict(api_name="/cancel") == "Nothing of yours is running."
                assert studio._running is not None and not studio._running.cancelled
                answer = httpx.post(url + "gradio_api/run/cancel", json={"data": [status[0]]}).json()["data"]
                assert answer == ["Cancelling after the current step…"]
            if "process_completed" in line:
                assert "cancelled after step" in line.lower()
                break
    assert watched["ended"] == ["cancelled"] and watched["steps"] < LONG_JOB["steps"]


def test_closing_the_stream_cancels_the_job(app, watched):
    _, studio, url = app
    assert start_long_job(url, "leaving-session").status_code == 200
    with httpx.stream("GET", url + "gradio_api/queue/data?session_hash=leaving-session", timeout=60) as stream:
        for line in stream.iter_lines():
            if re.search(r"Job \w+: step \d+ of", line):
                break  # the page is closed after its first step shown: the connection drops here
    steps_at_close = watched["steps"]
    wait_until(lambda: watched["ended"], 60)
    # cancelled at the next update the stream fails to deliver (they come at most every 0.25 s), long before the end
    assert watched["ended"] == ["cancelled"] and watched["steps"] <= steps_at_close + LONG_JOB["steps"] // 4
    assert studio._running is None


def test_a_flood_is_answered_queue_full_within_the_limit_and_the_next_request_is_served(app, watched):
    client, _, url = app
    answers = [start_long_job(url, f"flood-{i}") for i in range(3 * QUEUE_SIZE)]
    accepted = [(f"flood-{i}", a.json()["event_id"]) for i, a in enumerate(answers) if a.status_code == 200]
    full = [a for a in answers if a.status_code == 503 and "Queue is full" in a.json()["detail"]]
    assert len(accepted) <= QUEUE_SIZE + 1 and len(full) == len(answers) - len(accepted)  # one may be running
    last_session, _ = accepted[-1]
    with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={last_session}", timeout=60) as stream:
        estimate = next(json.loads(line[6:]) for line in stream.iter_lines() if '"estimation"' in line)
    assert estimate["rank"] >= 1 and estimate["queue_size"] >= 2  # the position a waiting page shows
    for session, event_id in accepted:
        body = {"session_hash": session, "fn_index": fn_index(url, "generate"), "event_id": event_id}
        assert httpx.post(url + "gradio_api/cancel", json=body, timeout=60).status_code == 200  # waits for the step
    wait_until(lambda: watched["active"] == 0, 60)
    assert watched["peak"] == 1 and set(watched["ended"]) <= {"cancelled"}
    status, *_ = client.predict("a red circle", [], None, *settings(), api_name="/generate")
    assert status.startswith("Done: t2i") and watched["peak"] == 1


# --------------------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"steps": 1e12}, "steps must be a whole number from 1 to 100"),
        ({"steps": 2.5}, "steps must be a whole number from 1 to 100"),
        ({"side": 1e9}, "area side \\(px\\) must be a whole number from 64 to 1280"),
        ({"frames": 6}, "4k\\+1"),
        ({"seed": -1}, "seed must be a whole number from 0 to 2147483647"),
        ({"shift": 0}, "shift must be a number from 1 to 15"),
        ({"task": "rm -rf"}, "task must be one of"),
        ({"aspect": 1}, "aspect must be one of"),
    ],
)
def test_every_setting_is_checked_on_the_server(app, watched, change, refusal):
    client, _, _ = app
    with pytest.raises(AppError, match=refusal):
        client.predict("a red circle", [], None, *settings(**change), api_name="/generate")
    assert watched["ended"] == []  # refused before anything ran


@pytest.mark.parametrize(
    ("name", "value", "refusal"),
    [
        ("cfg", "NaN", "text CFG must be a number from 1 to 15; got nan"),
        ("image_cfg", "Infinity", "image CFG must be a number from 1 to 5; got inf"),
    ],
)
def test_non_finite_numbers_are_refused(app, watched, name, value, refusal):
    _, _, url = app
    data = json.dumps(["a red circle", [], None, *settings(**{name: 12345.0})]).replace("12345.0", value)
    answer = httpx.post(
        url + "gradio_api/call/generate", content='{"data": ' + data + "}", headers={"content-type": "application/json"}
    )
    events = httpx.get(url + f"gradio_api/call/generate/{answer.json()['event_id']}", timeout=30).text
    assert "event: error" in events and refusal in events and watched["ended"] == []


def test_counts_and_prompt_length_are_checked_on_the_server(app, media, watched):
    client, _, _ = app
    with pytest.raises(AppError, match="images: at most 8 per request; got 9"):
        client.predict("Image 1", slots(*[media["square"]] * 9), None, *settings(), api_name="/generate")
    huge = "a red circle " * 80_000  # about 1 MB
    started = time.perf_counter()
    refusal = f"instruction is {len(huge):,} characters long; at most {MAX_PROMPT_CHARS:,}"
    for endpoint, args in (("/generate", [huge, [], None, *settings()]), ("/check_references", [huge, [], None]),
                           ("/rewrite", [huge, [], None])):
        with pytest.raises(AppError, match=refusal):
            client.predict(*args, api_name=endpoint)
    assert refusal in client.predict(huge, [], None, *settings(), api_name="/estimate")  # shown in the estimate line
    assert time.perf_counter() - started < 30 and watched["ended"] == []
    with pytest.raises(AppError, match="text CFG must be a number from 1 to 15; got nan"):
        client.predict("3, nan", "1", "Image 1", slots(media["square"]), None, *settings(), api_name="/cfg_grid")
    with pytest.raises(AppError, match="image CFG must be a number from 1 to 5; got 9"):
        client.predict("3", "9", "Image 1", slots(media["square"]), None, *settings(), api_name="/cfg_grid")


def malformed(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Reuse files that are broken or hostile in structure, with the message each must get."""
    def write(name: str, text: str) -> Path:
        (tmp_path / name).write_text(text)
        return tmp_path / name

    def chunk(name: str, value) -> Path:
        return save_png(np.zeros((8, 8, 3), np.uint8), tmp_path / name, value)

    good = {"caption": "x", "image_paths": [], "video_path": None}
    return {
        "deep": (write("deep.json", "[" * 100_000 + "]" * 100_000), "nested too deeply"),
        "paths not a list": (
            write("five.json", json.dumps([{"caption": "x", "ref_image_paths": 5}])),
            "ref_image_paths.{1,8} must be a list",
        ),
        "empty list": (write("empty.json", "[]"), "holds no task"),
        "no caption": (write("nocap.json", json.dumps([{"task": "t2i"}])), "needs a .{1,8}caption.{1,8} string"),
        "not json": (write("junk.json", "{nope"), "is not valid JSON"),
        "chunk is a list": (_png_text(tmp_path / "list.png", "[1, 2]"), "lack .{1,8}request"),
        "chunk lacks caption": (
            chunk("nocap.png", {"request": {"task": "t2i"}, "settings": {}}),
            "needs a .{1,8}caption",
        ),
        "steps 1e12": (
            chunk("steps.png", {"request": good, "settings": {"studio": {"num_inference_steps": 1e12}}}),
            "steps must be a whole number from 1 to 100",
        ),
        "side 1e9": (chunk("side.png", {"request": good, "settings": {"studio": {"side": 1e9}}}), "area side"),
        "no settings": (chunk("plain.png", None), "carries no VINO settings"),
    }


def _png_text(path: Path, text: str) -> Path:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("vino", text)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_malformed_reuse_files_get_a_clear_message(app, tmp_path):
    client, _, _ = app
    for name, (path, message) in malformed(tmp_path).items():
        with pytest.raises(AppError) as error:
            client.predict(handle_file(str(path)), api_name="/reuse_settings")
        text = str(error.value)
        assert re.search(message, text), (name, text)
        assert "Something went wrong" not in text and no_server_path(text), (name, text)


# --------------------------------------------------------------------------------------------------------- videos


def encode(
    path: Path, frames: int = 9, size=(64, 48), rate=24, codec="libx264", fmt=None, pts_ms=None, audio=False
) -> Path:
    """A small test video written with PyAV: grey frames, optional explicit timestamps (ms) for VFR."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if pts_ms is not None:
            stream.time_base = Fraction(1, 1000)
        for t in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 20 * t % 255, np.uint8), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[t], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Each hostile or odd video with what /check_video must answer (a regex)."""
    root = tmp_path_factory.mktemp("videos")
    (root / "empty.mp4").write_bytes(b"")
    whole = encode(root / "whole.mp4", frames=30)
    (root / "truncated.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # moov at the end: cut off
    return {
        "0-byte": (root / "empty.mp4", "is empty"),
        "audio-only": (audio_only(root / "audio.mp4"), "has no video stream"),
        "truncated": (root / "truncated.mp4", "cannot be read"),
        "1-frame": (encode(root / "one.mp4", frames=1), "Video 1: 1 frames"),
        "VFR": (
            encode(root / "vfr.mkv", frames=9, fmt="matroska", pts_ms=[0, 10, 20, 100, 300, 310, 600, 900, 1000]),
            "Video 1: 9 frames",
        ),
        "0/0 fps": (encode(root / "raw.h264", frames=9, fmt="h264"), "Video 1: 9 frames"),
        "4000x4000": (encode(root / "big.mp4", frames=1, size=(4000, 4000)), "is 4000x4000; at most 2048x2048"),
        "240 fps": (encode(root / "fast.mp4", frames=12, rate=240), "runs at 240 fps; at most 120"),
        "10-minute": (encode(root / "long.mp4", frames=600, rate=1, size=(32, 32)), "lasts 600 s; at most 60 s"),
        "mpeg4": (encode(root / "mpeg4.mp4", codec="mpeg4"), "Video 1: 9 frames.*mpeg4"),
        "vp9": (encode(root / "vp9.webm", codec="libvpx-vp9", fmt="webm"), "Video 1: 9 frames.*vp9"),
        "hevc": (encode(root / "hevc.mp4", codec="libx265"), "Video 1: 9 frames.*hevc"),
    }


def test_every_odd_video_gets_a_result_or_a_clear_refusal(app, videos):
    client, _, _ = app
    for name, (path, expected) in videos.items():
        try:
            answer = client.predict(handle_file(str(path)), api_name="/check_video")
        except AppError as error:
            answer = str(error)
        assert re.search(expected, answer), (name, answer)
        assert no_server_path(answer), (name, answer)


def test_short_and_odd_videos_generate(app, videos):
    client, _, _ = app
    for name in ("1-frame", "VFR", "hevc"):
        status, *_ = client.predict(
            "Turn Video 1 blue", [], handle_file(str(videos[name][0])), *settings(frames=5), api_name="/generate"
        )
        assert status.startswith("Done: tv2v"), (name, status)


def test_checking_a_video_decodes_no_frame(app, videos, monkeypatch):
    client, _, _ = app
    decoded = []
    real = av.container.InputContainer.decode

    def spy(self, *args, **kwargs):
        decoded.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(av.container.InputContainer, "decode", spy)
    assert client.predict(handle_file(str(videos["mpeg4"][0])), api_name="/check_video").startswith("Video 1: 9 frames")
    assert decoded == []


# ---------------------------------------------------------------------------------------------------- API surface


def test_only_the_named_endpoints_are_exposed(app):
    client, _, _ = app
    named = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert named == {"/add_images", "/move_earlier", "/move_later", "/remove_image", "/check_references",
                     "/check_video", "/estimate", "/apply_preset", "/random_seed", "/rewrite", "/generate", "/cancel",
                     "/cfg_grid", "/reuse_settings", "/switch_profile"}


def test_internal_handlers_and_unknown_events_answer_clearly(app):
    _, _, url = app
    deps = httpx.get(url + "config").json()["dependencies"]
    internal = [d["id"] for d in deps if d["api_visibility"] == "private" and d["backend_fn"]]
    for index in internal:
        session = f"probe-{index}"
        body = {"data": [None] * 3, "fn_index": index, "session_hash": session, "event_data": None, "trigger_id": None}
        assert httpx.post(url + "gradio_api/queue/join", json=body).status_code == 200
        with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=30) as stream:
            completed = next(json.loads(line[6:]) for line in stream.iter_lines() if "process_completed" in line)
        assert completed["success"] or completed["output"]["error"], (index, completed)
    body = {"data": [], "fn_index": 9999, "session_hash": "probe", "event_data": None, "trigger_id": None}
    answer = httpx.post(url + "gradio_api/queue/join", json=body)
    assert answer.status_code == 404 and "no such endpoint" in answer.json()["error"]
    assert httpx.get(url + "config").status_code == 200  # still serving


# ----------------------------------------------------------------------------------------------------------- logs


def test_a_user_error_is_one_log_line_and_an_unexpected_one_has_an_id(app, caplog, monkeypatch):
    client, studio, _ = app
    caplog.set_level(logging.INFO, logger="vino_app")
    with pytest.raises(AppError):
        client.predict("a red circle", [], None, *settings(steps=0), api_name="/generate")
    records = [r for r in caplog.records if r.name.startswith("vino_app")]
    assert len(records) == 1 and records[0].exc_info is None and "steps must be" in records[0].getMessage()
    assert "\n" not in records[0].getMessage()

    caplog.clear()
    monkeypatch.setattr(studio, "check", lambda *a: (_ for _ in ()).throw(RuntimeError("/secret/path broke")))
    with pytest.raises(AppError) as error:
        client.predict("Image 1", [], None, api_name="/check_references")
    shown = str(error.value)
    error_id = re.search(r"error ([0-9a-f]{8})", shown).group(1)
    assert "/secret/path" not in shown and "Traceback" not in shown
    records = [r for r in caplog.records if r.name.startswith("vino_app")]
    assert len(records) == 1 and records[0].exc_info is not None and error_id in records[0].getMessage()


def test_exposed_endpoints_answer_bad_calls_with_a_clear_error(app, media):
    client, studio, _ = app
    bad_calls = [
        ("/switch_profile", ["no-such-profile"]),
        ("/apply_preset", ["../../app"]),
        ("/move_later", [slots(media["square"]), 99, "Image 1"]),
        ("/remove_image", [[], None, "Image 1"]),
        ("/cancel", ["x" * 1000]),
        ("/cfg_grid", ["3, 5", "1", "", [], None, *settings()]),
        ("/cfg_grid", [",".join(["3"] * 17), "1", "a red circle", [], None, *settings()]),
        ("/generate", ["   ", [], None, *settings()]),
    ]
    for endpoint, args in bad_calls:
        with pytest.raises(AppError) as error:
            client.predict(*args, api_name=endpoint)
        text = str(error.value)
        assert text and "Something went wrong" not in text and no_server_path(text), (endpoint, text)
    assert studio.profile_name == "cpu"
