"""The project's procedural world and the small VINO trained on it (the studio's default without the release).

`demo_model_dir()` is the shipped model (`models/vino-world`, released layout); `load_world_pipeline` loads it
through the public `VinoPipeline.from_pretrained`; its `defaults.json` holds the recommended settings per task.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..pipeline import VinoPipeline

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULTS_FILE = "defaults.json"


def demo_model_dir() -> Path:
    """`models/vino-world` of this repository."""
    return REPO_ROOT / "models" / "vino-world"


def demo_model_available(root: Path | None = None) -> bool:
    root = root or demo_model_dir()
    return all((root / p).exists() for p in ("vino.ckpt", "qwen", "hunyuan/vae", "hunyuan/transformer/config.json"))


def load_world_pipeline(root: Path | None = None) -> VinoPipeline:
    """The world model on CPU in float32, loaded like the released weights."""
    root = Path(root or demo_model_dir())
    pipe = VinoPipeline.from_pretrained(
        root / "vino.ckpt", vlm=str(root / "qwen"), base=str(root / "hunyuan"), memory_profile="cpu"
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def demo_defaults(root: Path | None = None) -> dict:
    """Per task label: recommended settings, an example instruction and example reference files (repo-relative)."""
    return json.loads((Path(root or demo_model_dir()) / DEFAULTS_FILE).read_text())
