"""Which VINO weights the studio runs: the released ones, the project's demo model, the tiny test set, or a folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from ..hub_files import DEFAULT_BASE, DEFAULT_CHECKPOINT, DEFAULT_VLM

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL_DIR = REPO_ROOT / "models" / "vino-world"
PRESETS_DIR = REPO_ROOT / "presets"
MODEL_CHOICES = ("auto", "released", "demo", "tiny")


@dataclass(frozen=True)
class ModelSource:
    """Where the three checkpoints come from. kind: released | demo | tiny | local; family: which presets fit
    ("released" for real-world weights, "world" for models of the project's shape world)."""

    kind: str
    label: str
    checkpoint: str
    vlm: str
    base: str
    family: str

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, kind: str, label: str, family: str) -> "ModelSource":
        """A folder in the released layout: vino.ckpt, qwen/, hunyuan/{vae, transformer}."""
        folder = Path(folder)
        missing = [name for name in ("vino.ckpt", "qwen", "hunyuan") if not (folder / name).exists()]
        if missing:
            raise CheckpointError(
                f"the model folder '{folder}' lacks {', '.join(missing)}; it needs vino.ckpt, qwen/ and hunyuan/ "
                "(the released layout)"
            )
        return cls(kind, label, str(folder / "vino.ckpt"), str(folder / "qwen"), str(folder / "hunyuan"), family)


RELEASED = ModelSource("released", "VINO (released weights)", DEFAULT_CHECKPOINT, DEFAULT_VLM, DEFAULT_BASE, "released")


def released_weights_cached() -> bool:
    """Whether the hub cache already holds every file the engine reads of the released weights (nothing is
    downloaded); a Space's `preload_from_hub` puts them there at build time."""
    from huggingface_hub import try_to_load_from_cache

    from ..hub_files import RELEASED_FILES

    wanted = [(repo, name) for repo, files in RELEASED_FILES.items() for name in files]
    return all(isinstance(try_to_load_from_cache(repo, name), str) for repo, name in wanted)


def on_zerogpu() -> bool:
    """Whether this process runs on a Hugging Face ZeroGPU Space, as the `spaces` package reads it (env
    SPACES_ZERO_GPU). There `spaces` must be imported before anything touches CUDA: `app.py` imports it first."""
    from spaces.config import Config

    return Config.zero_gpu


def hosting_note(source: ModelSource, device_type: str) -> str | None:
    """What a visitor of a Space should know about its hardware: a CPU Space runs the demo model."""
    if not os.environ.get("SPACE_ID") or device_type != "cpu":
        return None
    return (
        f"This Space runs on CPU hardware, so it serves the {source.kind} model; the released VINO needs a GPU "
        "(a ZeroGPU or GPU Space, see docs/spaces.md)."
    )


def resolve_model(choice: str | None = None, cache_dir: str | os.PathLike | None = None) -> ModelSource:
    """The model for `choice` (default: env `VINO_MODEL`, else `auto`): `released` (hub ids, downloaded if needed),
    `demo` (the project's trained world model), `tiny` (random test weights, built on first use under `cache_dir`,
    env `VINO_CACHE_DIR` or ~/.cache/vino_studio), a folder in the released layout, or `auto`: the released weights on
    a ZeroGPU Space (preloaded at build time) or when they are cached and a GPU is present, else the demo model, else
    the tiny set."""
    choice = choice or os.environ.get("VINO_MODEL") or "auto"
    if choice == "auto":
        import torch

        if on_zerogpu() or (torch.cuda.is_available() and released_weights_cached()):
            return RELEASED
        choice = "demo" if (DEMO_MODEL_DIR / "vino.ckpt").exists() else "tiny"
    if choice == "released":
        return RELEASED
    if choice == "demo":
        return ModelSource.from_folder(
            DEMO_MODEL_DIR,
            "demo",
            "VINO world demo model (trained by the project on 64x64 shapes; an early, low-quality checkpoint)",
            "world",
        )
    if choice == "tiny":
        from ..tiny import build_tiny_checkpoints

        folder = Path(cache_dir or os.environ.get("VINO_CACHE_DIR") or Path.home() / ".cache" / "vino_studio") / "tiny"
        if not (folder / "vino.ckpt").exists():
            build_tiny_checkpoints(folder)
        return ModelSource.from_folder(folder, "tiny", "tiny random test weights (outputs are noise)", "world")
    if Path(choice).is_dir():
        return ModelSource.from_folder(choice, "local", f"local weights: {choice}", "released")
    raise CheckpointError(
        f"unknown model '{choice}'; use one of {', '.join(MODEL_CHOICES)} or a folder in the released layout"
    )
