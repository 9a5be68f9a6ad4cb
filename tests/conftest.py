"""Shared fixtures: the tiny checkpoint set (built offline, released layout), its pipeline, and test media."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The in-process apps get an upload cache of their own: a studio running beside the tests keeps its files.
os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="vino-tests-gradio-")
# Checkpoints are converted into a cache of the tests' own, never the user's.
os.environ["VINO_CACHE"] = tempfile.mkdtemp(prefix="vino-tests-converted-")

from vino_app import VinoPipeline  # noqa: E402
from vino_app.export import save_mp4  # noqa: E402
from vino_app.tiny import build_tiny_checkpoints  # noqa: E402

# Copies of ../shared/vino-golden and ../shared/vino-examples live in tests/data, so a bare clone runs them too.
GOLDEN = Path(os.environ.get("VINO_GOLDEN", Path(__file__).resolve().parent / "data" / "vino-golden"))


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return build_tiny_checkpoints(tmp_path_factory.mktemp("tiny"))


def load_tiny(root: Path) -> VinoPipeline:
    pipe = VinoPipeline.from_pretrained(
        root / "vino.ckpt", vlm=str(root / "qwen"), base=str(root / "hunyuan"), memory_profile="cpu"
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def pipe(tiny_root) -> VinoPipeline:
    return load_tiny(tiny_root)


def write_image(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A random-but-structured RGB image of `size` = (width, height)."""
    rng = np.random.default_rng(seed)
    array = np.zeros((size[1], size[0], 3), np.uint8)
    array[:] = rng.integers(0, 255, 3)
    array[size[1] // 4 : size[1] // 2, size[0] // 4 : size[0] // 2] = rng.integers(0, 255, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (96, 64)) -> Path:
    """A moving square on grey, H.264 MP4."""
    video = np.full((frames, size[1], size[0], 3), 128, np.uint8)
    for t in range(frames):
        video[t, 16:32, 4 + 4 * t : 20 + 4 * t] = (230, 200, 20)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_mp4(video, path)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {
        "wide": write_image(root / "wide.png", (96, 64), 1),
        "tall": write_image(root / "tall.jpg", (64, 96), 2),
        "square": write_image(root / "square.png", (80, 80), 3),
        "video": write_video(root / "clip.mp4"),
    }
