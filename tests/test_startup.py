"""Start-up: the page's modules import without the model libraries, and the studio loads its model behind the page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from vino_app import CheckpointError
from vino_app.studio import ModelSource, Studio
from vino_app.studio import studio as studio_module
from vino_app.ui import StudioUI

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("diffusers", "transformers", "bitsandbytes", "accelerate")


def test_the_page_builds_without_the_model_libraries(tmp_path):
    """What `app.py` does before it serves the page (the engine's public names, the studio, building the page around
    a model still loading) leaves diffusers, transformers, bitsandbytes and accelerate for the model load."""
    code = (
        "import sys\n"
        "from concurrent.futures import Future\n"
        "import vino_app\n"
        "from vino_app.studio import ModelSource, Studio\n"
        "from vino_app.ui import StudioUI\n"
        "vino_app.VinoError, vino_app.TaskSpec, vino_app.PROFILES\n"
        "source = ModelSource('tiny', 'tiny', 'ckpt', 'qwen', 'hunyuan', 'world')\n"
        f"studio = Studio(Future(), source, {str(tmp_path)!r})\n"
        "studio._loading_profile = 'cpu'\n"
        "StudioUI(studio).build()\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip().splitlines()[-1:] in ([], [""])
    # and the engine's names still resolve on first use
    code = "import vino_app; print(vino_app.VinoPipeline.__module__)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout.strip() == (
        "vino_app.pipeline"
    )


@pytest.fixture
def source(tiny_root) -> ModelSource:
    return ModelSource.from_folder(tiny_root, "tiny", "tiny test weights", "world")


def test_background_load_serves_the_page_first_and_waits_for_the_model(source, pipe, tmp_path, monkeypatch):
    release = threading.Event()

    def slow_load(source, memory_profile):
        release.wait(timeout=60)
        return pipe

    monkeypatch.setattr(studio_module, "_load_pipeline", slow_load)
    studio = Studio.load(source, None, tmp_path, background=True)
    ui = StudioUI(studio)
    assert not studio.ready and studio.profile_name == "cpu"
    assert "Loading" in ui.header() and "tiny test weights" in ui.header()
    ui.build()  # the page builds while the model loads
    assert not studio.ready
    release.set()
    assert studio.pipe is pipe and studio.ready
    assert "Loading" not in ui.loaded_header() and "device **cpu**" in ui.loaded_header()


def test_a_failed_background_load_is_reported_where_the_model_is_used(source, tmp_path, monkeypatch):
    def broken_load(source, memory_profile):
        raise CheckpointError(f"'{tmp_path}/vino.ckpt' is not a VINO checkpoint")

    monkeypatch.setattr(studio_module, "_load_pipeline", broken_load)
    studio = Studio.load(source, "cpu", tmp_path, background=True)
    with pytest.raises(CheckpointError, match="not a VINO checkpoint"):
        studio.pipe
    header = StudioUI(studio).loaded_header()
    assert "could not be loaded" in header and "not a VINO checkpoint" in header and str(tmp_path) not in header
    assert studio.profile_name == "cpu"


def test_a_model_that_fails_to_load_behind_the_page_ends_the_app_with_its_message(tmp_path):
    folder = tmp_path / "broken"
    for part in ("qwen", "hunyuan"):
        (folder / part).mkdir(parents=True)
    (folder / "vino.ckpt").write_bytes(b"not a checkpoint")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "app.py", "--model", str(folder), "--port", str(port)]
    command += ["--output-dir", str(tmp_path / "out")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    ended = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ended.returncode == 1 and "Traceback" not in ended.stderr, ended.stderr[-2000:]
    assert "error: " in ended.stderr and "vino.ckpt' is not a readable PyTorch checkpoint" in ended.stderr
