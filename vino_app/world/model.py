"""The world model's architecture: VINO's parts at a size that trains on a CPU, in the released on-disk layout.

    root/qwen/                    random Qwen3-VL (frozen; the world has no pretrained VLM) + the world tokenizer
    root/hunyuan/vae/             AutoencoderKLHunyuanVideo trained on the world (4x spatial, 4x temporal)
    root/hunyuan/transformer/     the MMDiT config (HunyuanVideo architecture)
    root/vino.ckpt                transformer.* and mm_encoder.{metaquery, connector, connector_vae_branch}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

from ..cpu_convolution import use_onednn_conv3d
from ..encoder import VinoConditionEncoder
from ..pipeline import VinoPipeline
from ..prompt import NEGATIVE_PROMPT_IMAGE, NEGATIVE_PROMPT_VIDEO, REWRITE_SYSTEM_PROMPT, SYSTEM_PROMPT
from ..tiny import build_qwen, build_tokenizer
from ..transformer import VinoTransformer3DModel
from .samples import MAKERS, make_sample

TOKEN_PIXELS = 8  # a token of the MMDiT covers 8x8 pixels (VAE compression x patch), as 16x16 in the release
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class WorldModelConfig:
    """Sizes of the world model. `num_queries = 0` and `boundary_tokens = False` are the paper's ablations."""

    text_hidden: int = 128
    text_layers: int = 2
    vocab_size: int = 1000
    num_queries: int = 16
    heads: int = 4
    head_dim: int = 32
    dual_layers: int = 2
    single_layers: int = 2
    text_embed_dim: int = 128
    latent_channels: int = 8
    vae_channels: tuple[int, ...] = (16, 32, 32)
    vae_spatial_compression: int = 4  # 2: 32x32 latents per 64x64 frame, patched 4x4 by the MMDiT (still 8x8 tokens)
    boundary_tokens: bool = True

    @property
    def patch_size(self) -> int:
        """The MMDiT's spatial patch: 8x8 tokens per 64x64 frame whatever the VAE's compression."""
        return TOKEN_PIXELS // self.vae_spatial_compression

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> "WorldModelConfig":
        data = json.loads(path.read_text())
        data["vae_channels"] = tuple(data["vae_channels"])
        return cls(**data)


def world_corpus(samples_per_task: int = 60, seed: int = 0) -> list[str]:
    """Sentences the tokenizer is trained on: prompts of every task, the system and negative prompts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    texts = [
        SYSTEM_PROMPT,
        REWRITE_SYSTEM_PROMPT,
        NEGATIVE_PROMPT_IMAGE,
        NEGATIVE_PROMPT_VIDEO,
        "Image 1: Image 2: Image 3: Video 1:",
    ]
    for task in MAKERS:
        texts += [make_sample(rng, task).prompt for _ in range(samples_per_task)]
    return texts


def build_world_qwen(root: Path, config: WorldModelConfig, seed: int) -> None:
    """The frozen random Qwen3-VL and its processor, with a tokenizer whose words are whole tokens."""
    tokenizer = build_tokenizer(config.vocab_size, world_corpus())
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    build_qwen(root, seed, tokenizer, config.text_hidden, config.text_layers)


def new_transformer(config: WorldModelConfig) -> VinoTransformer3DModel:
    """The MMDiT: patch 2x2x1 on the 16x16 latents of a 64x64 frame (4x4x1 on the 32x32 latents of a VAE with 2x
    spatial compression): 8x8 tokens."""
    third = config.head_dim // 4
    return VinoTransformer3DModel(
        in_channels=config.latent_channels,
        out_channels=config.latent_channels,
        num_attention_heads=config.heads,
        attention_head_dim=config.head_dim,
        num_layers=config.dual_layers,
        num_single_layers=config.single_layers,
        num_refiner_layers=1,
        patch_size=config.patch_size,
        mlp_ratio=4.0,
        text_embed_dim=config.text_embed_dim,
        pooled_projection_dim=8,
        rope_axes_dim=(config.head_dim - 2 * third * 3 // 2, third * 3 // 2, third * 3 // 2),
        use_boundary_tokens=config.boundary_tokens,
    )


def new_vae(config: WorldModelConfig) -> AutoencoderKLHunyuanVideo:
    """HunyuanVideo's VAE with 4x (or `vae_spatial_compression`) spatial and 4x temporal compression (3D
    convolutions on oneDNN on the CPU)."""
    blocks = len(config.vae_channels)
    vae = AutoencoderKLHunyuanVideo(
        latent_channels=config.latent_channels,
        down_block_types=("HunyuanVideoDownBlock3D",) * blocks,
        up_block_types=("HunyuanVideoUpBlock3D",) * blocks,
        block_out_channels=config.vae_channels,
        layers_per_block=1,
        norm_num_groups=8,
        spatial_compression_ratio=config.vae_spatial_compression,
        temporal_compression_ratio=4,
    )
    return use_onednn_conv3d(vae)


def new_encoder(vlm: Qwen3VLForConditionalGeneration, config: WorldModelConfig, seed: int) -> VinoConditionEncoder:
    """Condition encoder around the frozen `vlm`, with freshly initialised queries and connectors."""
    torch.manual_seed(seed)
    encoder = VinoConditionEncoder(vlm, config.num_queries, config.text_embed_dim, config.heads * config.head_dim)
    torch.nn.init.normal_(encoder.metaquery, std=0.02)
    vlm.requires_grad_(False)
    return encoder


def write_transformer_config(root: Path, transformer: VinoTransformer3DModel) -> None:
    """`root/hunyuan/transformer/config.json`, as the loader reads it (byte for byte the same for the same config)."""
    folder = root / "hunyuan" / "transformer"
    folder.mkdir(parents=True, exist_ok=True)
    data = dict(transformer.config)
    data["_class_name"] = "HunyuanVideoTransformer3DModel"
    data["_use_default_values"] = sorted(data.get("_use_default_values", []))  # a set: the same file every run
    (folder / "config.json").write_text(json.dumps(data, indent=1))


def assemble_pipeline(root: Path, config: WorldModelConfig, seed: int, vae: AutoencoderKLHunyuanVideo) -> VinoPipeline:
    """A trainable pipeline: the saved Qwen3-VL and processor under `root/qwen`, a fresh encoder head and MMDiT, the
    frozen `vae` (its 3D convolutions on oneDNN on the CPU)."""
    vlm = Qwen3VLForConditionalGeneration.from_pretrained(root / "qwen", dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(root / "qwen")
    encoder = new_encoder(vlm, config, seed)
    torch.manual_seed(seed + 1)
    transformer = new_transformer(config)
    use_onednn_conv3d(vae).requires_grad_(False)
    pipe = VinoPipeline(encoder, processor, transformer, vae.eval(), FlowMatchEulerDiscreteScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def fresh_pipeline(root: Path, seed: int = 0) -> tuple[VinoPipeline, WorldModelConfig]:
    """`assemble_pipeline` on a model folder's sizes (`world.json`), Qwen3-VL and VAE: a fresh encoder head and MMDiT
    (the benchmarks' starting point); with its config."""
    config = WorldModelConfig.load(root / "world.json")
    vae = AutoencoderKLHunyuanVideo.from_pretrained(root / "hunyuan" / "vae")
    return assemble_pipeline(root, config, seed, vae), config
