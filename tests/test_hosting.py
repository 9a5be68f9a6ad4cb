"""Hosting: the Spaces front matter, the Deta Spacefile, ZeroGPU wrapping and the launcher's options."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import yaml

import app
from vino_app.ui import on_gpu

ROOT = Path(__file__).resolve().parents[1]


def test_readme_front_matter_is_a_gradio_space():
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    config = yaml.safe_load(text.split("---\n")[1])
    assert (config["sdk"], config["app_file"]) == ("gradio", "app.py") and (ROOT / config["app_file"]).exists()


def test_spacefile_runs_the_app_in_one_python_micro():
    manifest = yaml.safe_load((ROOT / "Spacefile").read_text())
    assert manifest["v"] == 0 and len(manifest["micros"]) == 1
    micro = manifest["micros"][0]
    assert micro["engine"].startswith("python") and micro["run"] == "python app.py" and micro["primary"] is True


def test_zerogpu_wraps_with_a_duration_from_the_request(monkeypatch):
    seen = {}

    def gpu(duration):
        def wrap(fn):
            seen["duration"] = duration
            return lambda *a, **k: ("on gpu", fn(*a, **k))

        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    wrapped = on_gpu(lambda x: x * 2, duration=lambda x: 10 * x)
    assert wrapped(3) == ("on gpu", 6) and seen["duration"](4) == 40
    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed: the function runs as it is
    assert on_gpu(lambda x: x * 2, duration=lambda x: 1)(3) == 6


def test_launcher_reads_its_environment(monkeypatch):
    monkeypatch.setenv("VINO_MODEL", "demo")
    monkeypatch.setenv("VINO_PROFILE", "8gb")
    monkeypatch.setenv("PORT", "9999")
    args = app.build_parser().parse_args([])
    assert (args.model, args.profile, args.port) == ("demo", "8gb", 9999)
    assert app.build_parser().parse_args(["--model", "tiny"]).model == "tiny"
