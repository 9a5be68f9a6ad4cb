"""Converting `vino.ckpt` once into standard folders that diffusers' and transformers' `from_pretrained` load.

    <cache>/<key>/transformer/    config.json + diffusion_pytorch_model*.safetensors  (VinoTransformer3DModel)
    <cache>/<key>/vlm/            only when the checkpoint carries `mm_encoder.mm_encoder.*`: the VLM source's
                                  config/processor files + model*.safetensors with the checkpoint's VLM weights
                                  (the source's for keys the checkpoint lacks)
    <cache>/<key>/encoder.safetensors   metaquery, connector.*, connector_vae_branch.*
    <cache>/<key>/conversion.json       the source and the load report (missing / unused keys)

`<cache>` is `$VINO_CACHE`, by default `vino-converted` beside the hub cache; `<key>` hashes the checkpoint's
resolved path, size and modification time (a hub download's path names its revision) with the base and VLM
sources. Tensors keep the checkpoint's dtype; shards of at most `SHARD_SIZE` are written one at a time, so host
memory stays at about one shard above what is memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import init_empty_weights
from huggingface_hub import constants, snapshot_download, split_torch_state_dict_into_shards
from huggingface_hub.utils import tqdm
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoConfig, Qwen3VLForConditionalGeneration

from .checkpoint import ENCODER_PREFIX, TRANSFORMER_PREFIX, VLM_PREFIX, LoadReport, check_shapes, read_checkpoint
from .checkpoint import sub_state_dict
from .encoder import VinoConditionEncoder
from .errors import CheckpointError
from .loading import from_source
from .transformer import VinoTransformer3DModel

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the folder layout changes: old conversions are then rebuilt
SHARD_SIZE = "2GB"
CACHE_ENV = "VINO_CACHE"
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model{suffix}.safetensors"
TRANSFORMERS_WEIGHTS = "model{suffix}.safetensors"
HEADS_FILENAME = "encoder.safetensors"
REPORT_FILENAME = "conversion.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".ckpt", ".index.json")
TIED_OUTPUT = "lm_head.weight"


@dataclass(frozen=True)
class ConvertedCheckpoint:
    """Folders of one converted checkpoint. `vlm` is None when the checkpoint has no VLM weights (the VLM
    source is loaded as it is)."""

    root: Path
    transformer: Path
    vlm: Path | None
    heads: Path

    def reports(self) -> list[LoadReport]:
        """The load reports written at conversion (one per model)."""
        data = json.loads((self.root / REPORT_FILENAME).read_text())
        return [LoadReport(**r) for r in data["reports"]]


def cache_dir() -> Path:
    """`$VINO_CACHE`, or `vino-converted` beside the hub cache."""
    return Path(os.environ.get(CACHE_ENV) or Path(constants.HF_HUB_CACHE).parent / "vino-converted")


def conversion_key(checkpoint: Path, base: str, vlm: str) -> str:
    """A short hash of the checkpoint's identity (resolved path, size, mtime) and of the sources it is paired with."""
    stat = checkpoint.stat()
    identity = f"{FORMAT_VERSION}|{checkpoint.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{base}|{vlm}"
    return hashlib.sha256(identity.encode()).hexdigest()[:20]


def _local_folder(source: str, what: str) -> Path:
    """A local folder, or the hub snapshot of a repo id (downloaded unless already cached)."""
    if Path(source).is_dir():
        return Path(source)
    try:
        return Path(snapshot_download(source))
    except Exception as exc:  # offline, missing repo, no access
        raise CheckpointError(
            f"could not get the {what} from '{source}' ({type(exc).__name__}); pass a local folder, or make the hub "
            "reachable (HF_HUB_OFFLINE unset)"
        ) from None


def write_safetensors(state: dict[str, torch.Tensor], folder: Path, pattern: str, progress: tqdm) -> None:
    """`state` as safetensors shards named by `pattern` (plus their index when sharded), one shard in memory at a
    time; tensors that share storage (tied weights) are written as copies."""
    folder.mkdir(parents=True, exist_ok=True)
    split = split_torch_state_dict_into_shards(state, filename_pattern=pattern, max_shard_size=SHARD_SIZE)
    for filename, keys in split.filename_to_tensors.items():
        seen, shard = set(), {}
        for key in keys:
            tensor = state[key].contiguous()
            shard[key] = tensor.clone() if tensor.data_ptr() in seen else tensor
            seen.add(tensor.data_ptr())
        save_file(shard, folder / filename, metadata={"format": "pt"})
        progress.update(sum(t.numel() * t.element_size() for t in shard.values()))
        del shard
    if split.is_sharded:
        index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
        (folder / (pattern.format(suffix="") + ".index.json")).write_text(json.dumps(index, indent=2))


def _complete(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], report: LoadReport):
    """The expected keys of `state`; those it lacks as zeros in its dtype (they are logged as missing)."""
    dtype = next(iter(state.values())).dtype if state else torch.float32
    kept = {k: v for k, v in state.items() if k in expected}
    kept.update({k: torch.zeros(expected[k].shape, dtype=dtype) for k in report.missing})
    return kept


def _source_tensors(folder: Path, keys: set[str]) -> dict[str, torch.Tensor]:
    """The tensors named `keys` from the safetensors files of a model folder (memory-mapped)."""
    found = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(file, framework="pt") as handle:
            found.update({k: handle.get_tensor(k) for k in handle.keys() if k in keys})
    return found


def _vlm_folder(
    state: dict[str, torch.Tensor],
    vlm: str,
    expected: dict[str, torch.Tensor],
    tie_word_embeddings: bool,
    out: Path,
    progress: tqdm,
) -> LoadReport:
    """The VLM source's folder with the checkpoint's VLM weights in place of its own (`lm_head` may be absent when
    tied: transformers ties it to the input embeddings on loading)."""
    source = _local_folder(vlm, "Qwen3-VL model")
    for file in source.iterdir():
        if file.is_file() and not file.name.endswith(WEIGHT_SUFFIXES):
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, out / file.name)
    report = check_shapes(expected, state, "VLM")
    weights = {k: v for k, v in state.items() if k in expected}
    weights.update(_source_tensors(source, set(report.missing)))
    tied = {TIED_OUTPUT} if tie_word_embeddings else set()
    report.missing = sorted(set(expected) - set(weights) - tied)
    write_safetensors(weights, out, TRANSFORMERS_WEIGHTS, progress)
    return report


def convert_checkpoint(checkpoint: Path, base: str, vlm: str, cache: str | Path | None = None) -> ConvertedCheckpoint:
    """Convert `checkpoint` (a `vino.ckpt`) for `base` (its `transformer/config.json`) and `vlm` (Qwen3-VL repo or
    folder), or reuse an earlier conversion. Raises `CheckpointError` when the weights do not fit the configs."""
    root = (Path(cache) if cache else cache_dir()) / conversion_key(checkpoint, base, vlm)
    converted = ConvertedCheckpoint(root, root / "transformer", root / "vlm", root / HEADS_FILENAME)
    if (root / REPORT_FILENAME).is_file():
        has_vlm = converted.vlm.is_dir()
        return converted if has_vlm else ConvertedCheckpoint(root, converted.transformer, None, converted.heads)
    state = read_checkpoint(checkpoint)
    config = from_source(VinoTransformer3DModel.load_config, base, "MMDiT config", subfolder="transformer")
    vlm_config = from_source(AutoConfig.from_pretrained, vlm, "Qwen3-VL config")
    if "mm_encoder.metaquery" not in state:
        raise CheckpointError(
            f"'{checkpoint}' has no 'mm_encoder.metaquery' (the learnable query tokens); is it a VINO checkpoint?"
        )
    with init_empty_weights():
        transformer = VinoTransformer3DModel.from_config(config)
        vlm_model = Qwen3VLForConditionalGeneration(vlm_config)
        encoder = VinoConditionEncoder(
            vlm_model,
            num_queries=state["mm_encoder.metaquery"].shape[0],
            text_embed_dim=transformer.config.text_embed_dim,
            inner_dim=transformer.config.num_attention_heads * transformer.config.attention_head_dim,
        )
    mmdit_state = sub_state_dict(state, TRANSFORMER_PREFIX)
    heads_state = sub_state_dict(state, ENCODER_PREFIX, exclude=VLM_PREFIX)
    vlm_state = sub_state_dict(state, VLM_PREFIX)
    expected_heads = {k: v for k, v in encoder.state_dict().items() if not k.startswith("mm_encoder.")}
    reports = [
        check_shapes(transformer.state_dict(), mmdit_state, "MMDiT"),
        check_shapes(expected_heads, heads_state, "condition encoder"),
    ]

    partial = root.with_name(f"{root.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    total = sum(t.numel() * t.element_size() for t in state.values())
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"Converting {checkpoint.name} (once)") as progress:
        transformer.save_config(partial / "transformer")
        mmdit = _complete(mmdit_state, transformer.state_dict(), reports[0])
        write_safetensors(mmdit, partial / "transformer", DIFFUSERS_WEIGHTS, progress)
        heads = _complete(heads_state, expected_heads, reports[1])
        save_file({k: v.contiguous() for k, v in heads.items()}, partial / HEADS_FILENAME, metadata={"format": "pt"})
        progress.update(sum(t.numel() * t.element_size() for t in heads.values()))
        if vlm_state:
            tied = bool(getattr(vlm_config, "tie_word_embeddings", False))
            reports.append(_vlm_folder(vlm_state, vlm, vlm_model.state_dict(), tied, partial / "vlm", progress))
    (partial / REPORT_FILENAME).write_text(
        json.dumps({"checkpoint": str(checkpoint), "base": base, "vlm": vlm, "reports": [vars(r) for r in reports]})
    )
    try:
        partial.rename(root)
    except OSError:  # another process finished the same conversion first
        shutil.rmtree(partial, ignore_errors=True)
    return convert_checkpoint(checkpoint, base, vlm, cache)
