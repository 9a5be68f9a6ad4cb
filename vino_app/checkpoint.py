"""Reading and writing `vino.ckpt`, the released VINO weights (a plain `torch.save` state dict).

Keys: `transformer.*` (diffusers `HunyuanVideoTransformer3DModel` names), `mm_encoder.metaquery`,
`mm_encoder.connector.*`, `mm_encoder.connector_vae_branch.*` and optionally `mm_encoder.mm_encoder.*` (VLM).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError

logger = logging.getLogger(__name__)

CHECKPOINT_FILENAME = "vino.ckpt"
TRANSFORMER_PREFIX = "transformer."
ENCODER_PREFIX = "mm_encoder."
VLM_PREFIX = "mm_encoder.mm_encoder."


def resolve_checkpoint(source: str | os.PathLike, filename: str = CHECKPOINT_FILENAME) -> Path:
    """A local file, a local directory holding `filename`, or a hub repo id whose `filename` is downloaded."""
    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir():
        if (path / filename).is_file():
            return path / filename
        raise CheckpointError(
            f"'{filename}' was not found in the directory '{path}'; pass the file's path or its folder"
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HFValidationError

    try:
        return Path(hf_hub_download(str(source), filename))
    except HFValidationError:
        raise CheckpointError(f"'{source}' is neither an existing file or folder nor a hub repo id") from None
    except Exception as exc:  # offline, missing repo or file, no access
        raise CheckpointError(
            f"could not get '{filename}' from the hub repo '{source}' ({type(exc).__name__}); "
            f"download it and pass its local path, or check the network and HF_HUB_OFFLINE"
        ) from None


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """`torch.load` with `weights_only=True`, memory-mapped so tensors are read lazily from disk."""
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"'{path}' is not a readable PyTorch checkpoint of tensors (torch.load: {type(exc).__name__})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"'{path}' does not hold a state dict of tensors")
    return state


def sub_state_dict(state: dict[str, torch.Tensor], prefix: str, exclude: str | None = None) -> dict[str, torch.Tensor]:
    """Entries under `prefix` with the prefix removed (skipping those under `exclude`)."""
    return {
        k[len(prefix) :]: v
        for k, v in state.items()
        if k.startswith(prefix) and not (exclude and k.startswith(exclude))
    }


@dataclass
class LoadReport:
    """Keys of one module: those the checkpoint lacked and those it had that the module does not use."""

    module: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def log(self) -> None:
        if self.missing:
            logger.warning(
                "%s: %d weights missing from the checkpoint (kept at their initial values): %s",
                self.module,
                len(self.missing),
                ", ".join(self.missing[:8]),
            )
        if self.unexpected:
            logger.warning(
                "%s: %d checkpoint weights unused: %s",
                self.module,
                len(self.unexpected),
                ", ".join(self.unexpected[:8]),
            )


def check_shapes(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], name: str) -> LoadReport:
    """Compare checkpoint `state` with a module's `expected` state dict; a shape mismatch means the config
    does not fit the weights."""
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs config {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if mismatched:
        raise CheckpointError(
            f"the {name} weights do not match its configuration ({len(mismatched)} tensors differ, e.g. "
            f"{'; '.join(mismatched[:3])}); use the configuration the checkpoint was trained with"
        )
    return LoadReport(name, sorted(set(expected) - set(state)), sorted(set(state) - set(expected)))


def save_checkpoint(
    path: str | os.PathLike, transformer: nn.Module, encoder: nn.Module, include_vlm: bool = False
) -> None:
    """Write `transformer` and the encoder's queries/connectors (and the VLM if asked) in the released layout."""
    state = {TRANSFORMER_PREFIX + k: v.detach().cpu() for k, v in transformer.state_dict().items()}
    for k, v in encoder.state_dict().items():
        if include_vlm or not k.startswith("mm_encoder."):
            state[ENCODER_PREFIX + k] = v.detach().cpu()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
