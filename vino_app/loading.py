"""Building the three models from the released sources, straight into the target dtype and device.

Weights are streamed from the memory-mapped `vino.ckpt` into meta-initialised modules with diffusers'
`load_model_dict_into_meta`, which also hands them to a bitsandbytes quantizer when one is asked for.
"""

from __future__ import annotations

import torch
from accelerate import init_empty_weights
from accelerate.utils import set_module_tensor_to_device
from diffusers import AutoencoderKLHunyuanVideo
from diffusers.models.model_loading_utils import load_model_dict_into_meta
from torch import nn
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration, Qwen3VLProcessor

from .checkpoint import ENCODER_PREFIX, TRANSFORMER_PREFIX, VLM_PREFIX, LoadReport, check_shapes, sub_state_dict
from .cpu_convolution import use_onednn_conv3d
from .encoder import VinoConditionEncoder
from .errors import CheckpointError
from .memory import bitsandbytes_kwargs
from .transformer import VinoTransformer3DModel


def _from_source(loader, source: str, what: str, **kwargs):
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


def _fill(module: nn.Module, state: dict[str, torch.Tensor], name: str, dtype: torch.dtype, device, quantizer=None) -> LoadReport:
    """Load `state` into the meta-initialised `module`; zero-fill what the checkpoint lacks, and report it."""
    report = check_shapes(module.state_dict(), state, name)
    load_model_dict_into_meta(module, state, dtype=dtype, hf_quantizer=quantizer, device_map={"": device})
    for key in report.missing:
        shape = module.state_dict()[key].shape
        set_module_tensor_to_device(module, key, device, value=torch.zeros(shape, dtype=dtype))
    report.log()
    return report


def load_transformer(
    base: str, state: dict[str, torch.Tensor], dtype: torch.dtype, device: str, quantize: str | None = None
) -> tuple[VinoTransformer3DModel, LoadReport]:
    """The MMDiT: config from `base`/transformer, weights from the checkpoint's `transformer.*` keys."""
    config = _from_source(VinoTransformer3DModel.load_config, base, "MMDiT config", subfolder="transformer")
    with init_empty_weights():
        model = VinoTransformer3DModel.from_config(config)
    quantizer = None
    if quantize:
        from diffusers import BitsAndBytesConfig
        from diffusers.quantizers import DiffusersAutoQuantizer

        quantizer = DiffusersAutoQuantizer.from_config(BitsAndBytesConfig(**bitsandbytes_kwargs(quantize, dtype)))
        quantizer.validate_environment(torch_dtype=dtype, device_map={"": device})
        quantizer.preprocess_model(model=model, device_map={"": device}, keep_in_fp32_modules=[])
    report = _fill(model, sub_state_dict(state, TRANSFORMER_PREFIX), "MMDiT", dtype, device, quantizer)
    if quantizer is not None:
        quantizer.postprocess_model(model)
        model.hf_quantizer = quantizer
    return model.eval(), report


def load_condition_encoder(
    vlm_source: str,
    state: dict[str, torch.Tensor],
    transformer_config,
    dtype: torch.dtype,
    device: str,
    quantize: str | None = None,
) -> tuple[VinoConditionEncoder, Qwen3VLProcessor, LoadReport]:
    """Qwen3-VL and its processor from `vlm_source`; queries and connectors from the checkpoint's `mm_encoder.*`."""
    quant_kwargs = {}
    if quantize:
        from transformers import BitsAndBytesConfig

        quant_kwargs = {"quantization_config": BitsAndBytesConfig(**bitsandbytes_kwargs(quantize, dtype)), "device_map": device}
    vlm = _from_source(Qwen3VLForConditionalGeneration.from_pretrained, vlm_source, "Qwen3-VL model", dtype=dtype, **quant_kwargs)
    processor = _from_source(AutoProcessor.from_pretrained, vlm_source, "Qwen3-VL processor")
    if "mm_encoder.metaquery" not in state:
        raise CheckpointError("the checkpoint has no 'mm_encoder.metaquery' (the learnable query tokens); is it a VINO checkpoint?")
    with init_empty_weights():
        encoder = VinoConditionEncoder(
            vlm,
            num_queries=state["mm_encoder.metaquery"].shape[0],
            text_embed_dim=transformer_config.text_embed_dim,
            inner_dim=transformer_config.num_attention_heads * transformer_config.attention_head_dim,
        )
    own = sub_state_dict(state, ENCODER_PREFIX, exclude=VLM_PREFIX)
    heads = {k: v for k, v in encoder.state_dict().items() if not k.startswith("mm_encoder.")}
    report = check_shapes(heads, own, "condition encoder")
    load_model_dict_into_meta(encoder, own, dtype=dtype, device_map={"": device})
    for key in report.missing:
        set_module_tensor_to_device(encoder, key, device, value=torch.zeros(heads[key].shape, dtype=dtype))
    vlm_state = sub_state_dict(state, VLM_PREFIX)
    if vlm_state:
        if quantize:
            report.unexpected += [f"mm_encoder.{k} (skipped: the quantized VLM keeps its hub weights)" for k in vlm_state]
        else:
            result = vlm.load_state_dict(vlm_state, strict=False)
            report.unexpected += list(result.unexpected_keys)
    report.log()
    if not quantize:
        encoder.to(device)
    return encoder.eval(), processor, report


def load_vae(base: str, dtype: torch.dtype, device: str) -> AutoencoderKLHunyuanVideo:
    """The HunyuanVideo VAE from `base`/vae, its 3D convolutions on oneDNN whenever it runs on the CPU."""
    vae = _from_source(AutoencoderKLHunyuanVideo.from_pretrained, base, "VAE", subfolder="vae", torch_dtype=dtype)
    return use_onednn_conv3d(vae).to(device).eval()
