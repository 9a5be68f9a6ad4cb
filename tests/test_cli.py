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
        codes[task_file.stem] = main(["generate", "--task-file", str(task_file), "--frames", "5", *tiny_flags(tiny_root, out)])
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
    code = main(["generate", "--prompt", "Make Image 1 blue", "--image", str(media["wide"]), *tiny_flags(tiny_root, out)])
    assert code == 0 and (out / "0.png").is_file()
    assert read_settings(out / "0.png")["settings"]["num_inference_steps"] == 1
    code = main(["generate", "--prompt", "Make Image 2 blue", "--image", str(media["wide"]), *tiny_flags(tiny_root, out)])
    err = capsys.readouterr().err
    assert code == 1 and 'names "Image 2" but there is 1 image attached' in err and "Traceback" not in err
    code = main(["generate", "--prompt", "x", "--checkpoint", str(tmp_path / "nope.ckpt"), "--vlm", "x", "--profile", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "nope.ckpt" in err
