"""`python -m vino_app generate` on the released example task files and on flags."""

import json

import av
import pytest
from PIL import Image

from vino_app.cli import main
from vino_app.export import read_settings

from .conftest import GOLDEN, write_image, write_video

EXAMPLES = GOLDEN.parent / "vino-examples" / "tasks"


def tiny_flags(root, out):
    return ["--checkpoint", str(root / "vino.ckpt"), "--vlm", str(root / "qwen"), "--base", str(root / "hunyuan"),
            "--profile", "cpu", "--steps", "1", "--area", str(64 * 64), "--output-dir", str(out)]


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="released example task files not available")
def test_released_example_task_files(tiny_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    files = sorted(EXAMPLES.glob("*.json"))
    missing = []
    for n, task_file in enumerate(files):
        for row in json.loads(task_file.read_text()):
            for path in row.get("ref_image_paths", []):
                write_image(tmp_path / path, (96, 64), n)
            video = row.get("ref_video_path")
            if video and "scene1027" not in video:  # never published: must give a clear error
                write_video(tmp_path / video)
            elif video:
                missing.append(video)
    codes = {}
    for task_file in files:
        out = tmp_path / "out" / task_file.stem
        codes[task_file.stem] = main(
            ["generate", "--task-file", str(task_file), "--frames", "5", *tiny_flags(tiny_root, out)]
        )
    captured = capsys.readouterr()
    assert codes.pop("tiv2v_camclone") == 1 and "scene1027_10.mp4' was not found" in captured.err
    assert set(codes.values()) == {0}, captured.err
    for task_file in files:
        rows = json.loads(task_file.read_text())
        for row in rows:
            if row.get("ref_video_path") in missing:
                continue
            stem = tmp_path / "out" / task_file.stem / row["index"]
            image_task = row["task"] in ("t2i", "ti2i")
            result = stem.with_suffix(".png" if image_task else ".mp4")
            assert result.is_file(), result
            assert read_settings(result)["request"]["caption"] == row["caption"]
            sidecar = json.loads(stem.with_suffix(".json").read_text())
            assert sidecar[0]["caption"] == row["caption"] and sidecar[0]["task"] == row["task"]
            if image_task:
                assert Image.open(result).size[0] % 16 == 0
            else:
                with av.open(str(result)) as c:
                    s = c.streams.video[0]
                    assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
                    assert sum(1 for _ in c.decode(s)) == 5


def test_flags_and_errors(tiny_root, media, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["generate", "--prompt", "Make Image 1 blue", "--image", str(media["wide"]), *tiny_flags(tiny_root, out)]
    )
    assert code == 0 and (out / "0.png").is_file()
    assert read_settings(out / "0.png")["settings"]["num_inference_steps"] == 1
    code = main(
        ["generate", "--prompt", "Make Image 2 blue", "--image", str(media["wide"]), *tiny_flags(tiny_root, out)]
    )
    err = capsys.readouterr().err
    assert code == 1 and 'names "Image 2" but there is 1 image attached' in err and "Traceback" not in err
    code = main(
        ["generate", "--prompt", "x", "--checkpoint", str(tmp_path / "nope.ckpt"), "--vlm", "x", "--profile", "cpu"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "nope.ckpt" in err


class Called(Exception):
    """Raised by the recording stand-in of the pipeline call: nothing is generated."""


@pytest.fixture
def recorded(monkeypatch):
    """The keyword arguments of every pipeline call `main` makes (the call itself is skipped)."""
    from vino_app import VinoPipeline, VinoInputError

    calls = []

    def record(self, prompt, images=(), video=None, **kwargs):
        calls.append(kwargs)
        raise VinoInputError("recorded")

    monkeypatch.setattr(VinoPipeline, "__call__", record)
    return calls


def test_left_out_flags_are_the_release_defaults_of_the_task(tiny_root, media, tmp_path, recorded):
    flags = [f for f in tiny_flags(tiny_root, tmp_path) if f not in ("--steps", "1")]
    main(["generate", "--prompt", "Make Image 1 blue", "--image", str(media["wide"]), *flags])
    main(["generate", "--prompt", "Video 1 at night", "--video", str(media["video"]), *flags])
    main(["generate", "--prompt", "Image 1 moves", "--image", str(media["wide"]), "--task", "i2v", *flags])
    ti2i, tv2v, i2v = recorded
    assert ti2i["num_inference_steps"] == 50 and ti2i["num_frames"] == 1 and ti2i["cache"] == "off"
    # None: the pipeline takes the task table's CFG, shift and image CFG (3 with reference images)
    assert ti2i["image_guidance_scale"] is ti2i["guidance_scale"] is ti2i["shift"] is None
    assert tv2v["num_frames"] == i2v["num_frames"] == 85 and tv2v["num_inference_steps"] == 50


def test_speed_flags_reach_the_pipeline(tiny_root, tmp_path, monkeypatch, capsys):
    from vino_app import VinoPipeline

    backends, compiled = [], []
    set_backend = VinoPipeline.set_attention_backend
    monkeypatch.setattr(VinoPipeline, "set_attention_backend", lambda p, b: backends.append(b) or set_backend(p, b))
    monkeypatch.setattr(VinoPipeline, "compile_blocks", lambda p, **kw: compiled.append(kw))
    frames = {}
    for cache in ("off", "faster"):
        out = tmp_path / cache
        flags = [*tiny_flags(tiny_root, out), "--steps", "50", "--frames", "5", "--cache", cache]  # the last --steps
        assert main(["generate", "--prompt", "a red circle on a long blue table", *flags]) == 0
        frames[cache] = (out / "0.mp4").read_bytes()
        assert read_settings(out / "0.mp4")["settings"]["cache"] == cache
    assert frames["off"] != frames["faster"]  # the cache skipped steps (pipeline tests bound how far it moves)
    assert backends == ["native", "native"] and compiled == []
    assert main(["generate", "--prompt", "x", "--compile", *tiny_flags(tiny_root, tmp_path / "c")]) == 0
    assert compiled == [{"dynamic": True}]
    assert main(["generate", "--prompt", "x", "--attention", "flash", *tiny_flags(tiny_root, tmp_path)]) == 2
    assert "attention backend 'flash' needs a CUDA GPU; on the CPU use 'native'" in capsys.readouterr().err


def test_model_choice(tmp_path, monkeypatch, recorded, capsys):
    monkeypatch.setenv("VINO_CACHE_DIR", str(tmp_path / "cache"))
    main(["generate", "--prompt", "x", "--model", "tiny", "--profile", "cpu", "--output-dir", str(tmp_path)])
    assert (tmp_path / "cache" / "tiny" / "vino.ckpt").is_file() and len(recorded) == 1
    assert main(["generate", "--prompt", "x", "--model", str(tmp_path / "nowhere"), "--profile", "cpu"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_a_model_with_recommended_settings_supplies_the_left_out_flags(tiny_root, tmp_path, recorded, capsys):
    """A model folder's defaults.json (the demo model ships one) fills what the flags leave out; a flag given wins;
    the release's weights (no such file) keep the task table's defaults (the test above)."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_root, folder)
    recommended = {"num_inference_steps": 20, "guidance_scale": 4.0, "image_guidance_scale": 1.0, "shift": 2.0,
                   "num_frames": 9, "height": 64, "width": 64}
    (folder / "defaults.json").write_text(json.dumps({"t2i": {**recommended, "num_frames": 1}, "t2v": recommended}))
    base = ["generate", "--model", str(folder), "--profile", "cpu", "--output-dir", str(tmp_path / "out")]
    main([*base, "--prompt", "a red circle"])
    main([*base, "--prompt", "a red circle moves", "--task", "t2v", "--cfg", "6", "--width", "96", "--height", "64"])
    t2i, t2v = recorded
    assert {k: t2i[k] for k in ("num_inference_steps", "guidance_scale", "shift", "num_frames", "area")} == {
        "num_inference_steps": 20, "guidance_scale": 4.0, "shift": 2.0, "num_frames": 1, "area": 64 * 64}
    assert t2v["guidance_scale"] == 6 and t2v["shift"] == 2.0 and t2v["num_frames"] == 9  # the flag given wins
    assert (t2v["height"], t2v["width"], t2v["area"]) == (64, 96, None)
    (folder / "defaults.json").write_text("[1, 2")
    assert main([*base, "--prompt", "a red circle"]) == 2
    assert "the model's defaults.json is not readable JSON" in capsys.readouterr().err
