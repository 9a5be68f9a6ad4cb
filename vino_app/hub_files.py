"""The files of the released weights that the engine reads from the hub: one list for the cache check of the
model choice, the Space's build-time download (README front matter `preload_from_hub`) and their tests.

The Qwen3-VL-4B-Instruct names are those of its hub repo (two weight shards); HunyuanVideo gives only its VAE and
the MMDiT's config (the MMDiT weights come from `vino.ckpt`).
"""

from __future__ import annotations

from .checkpoint import CHECKPOINT_FILENAME

DEFAULT_CHECKPOINT = "SOTAMak1r/VINO-weight"
DEFAULT_VLM = "Qwen/Qwen3-VL-4B-Instruct"
DEFAULT_BASE = "hunyuanvideo-community/HunyuanVideo"

RELEASED_FILES: dict[str, tuple[str, ...]] = {
    DEFAULT_CHECKPOINT: (CHECKPOINT_FILENAME,),
    DEFAULT_VLM: (
        "chat_template.json",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "video_preprocessor_config.json",
        "vocab.json",
    ),
    DEFAULT_BASE: ("transformer/config.json", "vae/config.json", "vae/diffusion_pytorch_model.safetensors"),
}


def preload_from_hub() -> list[str]:
    """The front matter's `preload_from_hub` entries: `repo_id file1,file2,...` per repo."""
    return [f"{repo} {','.join(files)}" for repo, files in RELEASED_FILES.items()]
