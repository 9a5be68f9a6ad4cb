"""Test support: the tiny set laid out as the three released hub repositories in a hub cache, and a recorder of the
files a loader takes from it: those resolved through huggingface_hub's download (online, each would be downloaded)
and those opened (Linux inotify, so reads from Rust or C code such as safetensors' are seen too)."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator
from unittest import mock

from huggingface_hub import file_download

from safetensors.torch import load_file, save_file

from vino_app.hub_files import RELEASED_FILES
from vino_app.hub_files import DEFAULT_BASE, DEFAULT_CHECKPOINT, DEFAULT_VLM

COMMIT = "0" * 40
# Files the hub repos hold beside the ones the engine reads; a loader that opens any of them downloads too much.
OTHER_FILES = {
    DEFAULT_CHECKPOINT: ("README.md",),
    DEFAULT_VLM: ("README.md",),
    DEFAULT_BASE: (
        "README.md",
        "model_index.json",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "tokenizer/tokenizer_config.json",
        "transformer/diffusion_pytorch_model.safetensors.index.json",
        "transformer/diffusion_pytorch_model-00001-of-00003.safetensors",
    ),
}
IN_OPEN, IN_ISDIR, IN_NONBLOCK = 0x20, 0x40000000, 0o4000


def _qwen_files(qwen: Path, out: Path) -> None:
    """The tiny Qwen3-VL under the released repo's file names: two weight shards and an index, separate tokenizer
    vocabulary/merges, image and video preprocessor configs and a chat template file."""
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(qwen / name, out / name)
    state = load_file(qwen / "model.safetensors")
    keys = sorted(state)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    for name, names in shards.items():
        save_file({k: state[k].contiguous() for k in names}, out / name, metadata={"format": "pt"})
    total = sum(t.numel() * t.element_size() for t in state.values())
    weight_map = {k: name for name, names in shards.items() for k in names}
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    model = json.loads((qwen / "tokenizer.json").read_text())["model"]
    (out / "vocab.json").write_text(json.dumps(model["vocab"]))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in model["merges"]) + "\n")
    processor = json.loads((qwen / "processor_config.json").read_text())
    parts = {"preprocessor_config.json": "image_processor", "video_preprocessor_config.json": "video_processor"}
    for name, part in parts.items():
        (out / name).write_text(json.dumps({**processor[part], "processor_class": processor["processor_class"]}))
    template = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    (out / "chat_template.json").write_text(json.dumps({"chat_template": template}))


def mirror_released_repos(tiny_root: Path, cache: Path) -> dict[str, Path]:
    """Write the hub cache `cache` (HF_HUB_CACHE layout) holding the three released repos made of the tiny set, with
    the released file names plus `OTHER_FILES`; returns each repo's snapshot folder."""
    snapshots = {}
    for repo in (DEFAULT_CHECKPOINT, DEFAULT_VLM, DEFAULT_BASE):
        folder = cache / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(COMMIT)
        snapshots[repo] = snapshot = folder / "snapshots" / COMMIT
        snapshot.mkdir(parents=True)
    shutil.copy(tiny_root / "vino.ckpt", snapshots[DEFAULT_CHECKPOINT] / "vino.ckpt")
    _qwen_files(tiny_root / "qwen", snapshots[DEFAULT_VLM])
    shutil.copytree(tiny_root / "hunyuan", snapshots[DEFAULT_BASE], dirs_exist_ok=True)
    for repo, names in OTHER_FILES.items():
        for name in names:
            path = snapshots[repo] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
    for repo, names in RELEASED_FILES.items():
        missing = [n for n in names if not (snapshots[repo] / n).is_file()]
        assert not missing, f"the mirror of {repo} lacks {missing}"
    return snapshots


def _relative(roots: dict[str, Path], path: str) -> tuple[str, str] | None:
    for repo, root in roots.items():
        if Path(path).is_relative_to(root):
            return repo, str(Path(path).relative_to(root))
    return None


def _patch_everywhere(stack: ExitStack, function, replacement) -> None:
    """Replace `function` in every loaded module that holds it (transformers and diffusers import it by name)."""
    for module in list(sys.modules.values()):
        for name, value in list(getattr(module, "__dict__", {}).items()):
            if value is function:
                stack.enter_context(mock.patch.object(module, name, replacement))


@contextmanager
def files_taken(roots: dict[str, Path]) -> Iterator[dict[str, set[str]]]:
    """Record, per repo, the paths (relative to its snapshot folder) of the files resolved or opened under `roots`
    while the block runs."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    assert fd >= 0, "inotify is not available"
    watches = {}
    for repo, root in roots.items():
        for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
            wd = libc.inotify_add_watch(fd, str(folder).encode(), IN_OPEN)
            assert wd >= 0, f"cannot watch {folder}"
            watches[wd] = (repo, folder.relative_to(root))
    opened: dict[str, set[str]] = {repo: set() for repo in roots}
    def recording(function):
        def wrapper(*args, **kwargs):
            path = function(*args, **kwargs)
            if isinstance(path, (str, Path)) and (found := _relative(roots, str(path))) is not None:
                opened[found[0]].add(found[1])
            return path

        return wrapper

    try:
        with ExitStack() as stack:
            for function in (file_download._hf_hub_download_to_cache_dir, file_download.try_to_load_from_cache):
                _patch_everywhere(stack, function, recording(function))
            yield opened
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(data):
                wd, mask, _, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
                offset += 16 + length
                repo, folder = watches[wd]
                if name and not mask & IN_ISDIR:
                    opened[repo].add(str(folder / name) if str(folder) != "." else name)
    finally:
        os.close(fd)
