"""Building the three models from converted folders (see `convert.py`) through the libraries' `from_pretrained`.

Each model is streamed from memory-mapped safetensors straight into its target dtype and device
(`low_cpu_mem_usage=True`, `device_map`); a bitsandbytes `quantization_config` quantizes it while loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKLHunyuanVideo
from safetensors.torch import load_file
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration, Qwen3VLProcessor

from .cpu_convolution import use_onednn_conv3d
from .encoder import VinoConditionEncoder
from .errors import CheckpointError, VinoInputError
from .memory import bitsandbytes_kwargs
from .transformer import VinoTransformer3DModel

if TYPE_CHECKING:
    from .convert import ConvertedCheckpoint


def from_source(loader, source: str, what: str, **kwargs):
    """Call a `from_pretrained`-style loader, turning "not found" into a `CheckpointError` naming the source."""
    try:
        return loader(source, **kwargs)
    except (OSError, ValueError) as exc:
        sub = kwargs.get("subfolder")
        where = f"'{source}'" + (f", subfolder '{sub}'" if sub else "")
        raise CheckpointError(
            f"could not load the {what} from {where}: {str(exc).splitlines()[0]}. "
            "Pass a local folder, or make the hub reachable (HF_HUB_OFFLINE unset)"
        ) from None


def _quantization(library: str, mode: str | None, dtype: torch.dtype, device: str) -> dict:
    """`quantization_config` for `from_pretrained` of diffusers or transformers (empty without quantization)."""
    kwargs = bitsandbytes_kwargs(mode, dtype)
    if kwargs is None:
        return {}
    if library == "diffusers":
        from diffusers import BitsAndBytesConfig

        # diffusers refuses a device map naming the CPU unless this is set; with one device for the whole model
        # it changes nothing else (no module is kept unquantized). transformers accepts an all-CPU map as it is.
        kwargs["llm_int8_enable_fp32_cpu_offload"] = torch.device(device).type == "cpu"
    else:
        from transformers import BitsAndBytesConfig
    return {"quantization_config": BitsAndBytesConfig(**kwargs)}


def load_transformer(
    folder: Path, dtype: torch.dtype, device: str, quantize: str | None = None
) -> VinoTransformer3DModel:
    """The MMDiT from a converted `transformer/` folder, in `dtype` on `device`, NF4 / int8 when `quantize` says."""
    try:
        model = VinoTransformer3DModel.from_pretrained(
            folder,
            torch_dtype=dtype,
            device_map={"": device},
            low_cpu_mem_usage=True,
            **_quantization("diffusers", quantize, dtype, device),
        )
    except RuntimeError as exc:
        if "No GPU found" not in str(exc):
            raise
        raise VinoInputError(
            f"quantizing the MMDiT to {quantize} on '{device}' is refused by diffusers without a GPU; "
            "use the 'cpu' or 'full' profile on this machine"
        ) from None
    return model.eval()


def load_condition_encoder(
    converted: ConvertedCheckpoint,
    vlm_source: str,
    transformer_config,
    dtype: torch.dtype,
    device: str,
    quantize: str | None = None,
) -> tuple[VinoConditionEncoder, Qwen3VLProcessor]:
    """Qwen3-VL (the converted folder when the checkpoint carries VLM weights, else `vlm_source`) and its processor;
    queries and connectors from the converted `encoder.safetensors`."""
    vlm = from_source(
        Qwen3VLForConditionalGeneration.from_pretrained,
        str(converted.vlm or vlm_source),
        "Qwen3-VL model",
        dtype=dtype,
        device_map={"": device},
        **_quantization("transformers", quantize, dtype, device),
    )
    processor = from_source(AutoProcessor.from_pretrained, vlm_source, "Qwen3-VL processor")
    heads = load_file(converted.heads, device=device)
    with init_empty_weights():
        encoder = VinoConditionEncoder(
            vlm,
            num_queries=heads["metaquery"].shape[0],
            text_embed_dim=transformer_config.text_embed_dim,
            inner_dim=transformer_config.num_attention_heads * transformer_config.attention_head_dim,
        )
    result = encoder.load_state_dict({k: v.to(dtype) for k, v in heads.items()}, strict=False, assign=True)
    lacking = [k for k in result.missing_keys if not k.startswith("mm_encoder.")]
    if lacking or result.unexpected_keys:
        unfit = lacking + result.unexpected_keys
        raise CheckpointError(f"'{converted.heads}' does not fit the condition encoder: {', '.join(unfit)}")
    return encoder.eval(), processor


def load_vae(base: str, dtype: torch.dtype, device: str) -> AutoencoderKLHunyuanVideo:
    """The HunyuanVideo VAE from `base`/vae, its 3D convolutions on oneDNN whenever it runs on the CPU."""
    vae = from_source(AutoencoderKLHunyuanVideo.from_pretrained, base, "VAE", subfolder="vae", torch_dtype=dtype)
    return use_onednn_conv3d(vae).to(device).eval()
