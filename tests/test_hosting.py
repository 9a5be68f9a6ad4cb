"""Hosting: the Spaces front matter, the Deta Spacefile and the launcher's options (ZeroGPU: tests/test_spaces.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

import app

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


def test_launcher_reads_its_environment(monkeypatch):
    monkeypatch.setenv("VINO_MODEL", "demo")
    monkeypatch.setenv("VINO_PROFILE", "8gb")
    monkeypatch.setenv("PORT", "9999")
    args = app.build_parser().parse_args([])
    assert (args.model, args.profile, args.port) == ("demo", "8gb", 9999)
    assert app.build_parser().parse_args(["--model", "tiny"]).model == "tiny"
