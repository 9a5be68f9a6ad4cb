"""A tiny, randomly initialised checkpoint set in the released on-disk layout, built offline.

    root/qwen/                    Qwen3-VL (3 layers, hidden 64) + byte-level BPE tokenizer with Qwen's special
                                  tokens + processor
    root/hunyuan/vae/             AutoencoderKLHunyuanVideo (4 latent channels, 8x / 4x compression)
    root/hunyuan/transformer/     config.json only (weights live in vino.ckpt)
    root/vino.ckpt                transformer.* and mm_encoder.{metaquery, connector, connector_vae_branch}

It loads through `VinoPipeline.from_pretrained(root / "vino.ckpt", vlm=root / "qwen", base=root / "hunyuan")`,
the same code path as the released weights. Used by the tests and as the app's fallback model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Qwen2's pre-tokenizer split: contractions, letters, single digits, punctuation runs, newlines, spaces.
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CORPUS = [
    "You are a helpful assistant aimed at generating an output video caption.",
    "Image 1: Image 2: Image 3: Video 1: seconds",
    "A red circle on the left of a blue square, studio light. A green triangle moves to the right.",
    "Make the circle in Image 1 yellow. Put the hat from Image 2 on the man in Video 1.",
    "low quality, blurry, flickering, watermark, logo, text, bad composition, overexposed, underexposed",
]
@dataclass(frozen=True)
class TinySizes:
    """Widths of the tiny set. `QUANTIZABLE` makes every quantized linear layer's input width a multiple of 64 (the
    block size) and its output width a multiple of 32, as bitsandbytes' CPU NF4 kernel needs on AVX512-BF16 CPUs;
    the default set's 32-wide inputs and 16-wide MMDiT output cannot run in it."""

    text_hidden: int = 64
    vision_hidden: int = 32
    queries: int = 8
    inner_dim: int = 32  # two heads
    text_embed_dim: int = 32
    pooled_projection_dim: int = 8
    latent_channels: int = 4

    @property
    def rope_axes_dim(self) -> tuple[int, int, int]:
        """(t, row, col) rotary widths summing to the head width, in HunyuanVideo's 1:3:3 proportion (t even)."""
        head = self.inner_dim // 2
        t = 2 * (head // 8)
        return (t, (head - t) // 2, (head - t) // 2)


QUANTIZABLE = TinySizes(vision_hidden=64, inner_dim=64, text_embed_dim=64, pooled_projection_dim=64, latent_channels=8)


def build_tokenizer(vocab_size: int = 400, corpus: list[str] = CORPUS):
    """Byte-level BPE trained on `corpus` (default: a few sentences), with Qwen's special tokens and pre-tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    return Qwen2TokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None
    )


def build_qwen(
    root: Path, seed: int, tokenizer=None, text_hidden: int = 64, text_layers: int = 3, vision_hidden: int = 32
) -> None:
    """A random Qwen3-VL (text: `text_layers` layers of width `text_hidden`; vision: 2 layers of width
    `vision_hidden`, patch 16) and its processor (`tokenizer`, default `build_tokenizer()`), saved under `root`."""
    config = dict(
        text_config=dict(
            hidden_size=text_hidden,
            intermediate_size=2 * text_hidden,
            num_hidden_layers=text_layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            max_position_embeddings=4096,
            rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True},
            rope_theta=5_000_000.0,
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=2,
            hidden_size=vision_hidden,
            intermediate_size=2 * vision_hidden,
            num_heads=2,
            out_hidden_size=text_hidden,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=256,
            deepstack_visual_indexes=[1],
        ),
        tie_word_embeddings=True,
    )
    save_qwen(root, seed, config, tokenizer or build_tokenizer(), vocab_size=None)


def save_qwen(root: Path, seed: int, config: dict, tokenizer, vocab_size: int | None) -> None:
    """A random Qwen3-VL of `config` (a `Qwen3VLConfig` dict; its special-token ids are set to `tokenizer`'s, its
    vocabulary to `vocab_size`, by default the tokenizer's) and its processor, saved under `root`. The model is built
    on the default device, in the default dtype."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = {
        **config,
        "text_config": {**config["text_config"], "vocab_size": vocab_size or len(tokenizer)},
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }
    torch.manual_seed(seed)
    Qwen3VLForConditionalGeneration(Qwen3VLConfig(**config)).save_pretrained(root)
    norm = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2, **norm),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2, **norm),
    )
    processor.save_pretrained(root)


def build_hunyuan(root: Path, seed: int, sizes: TinySizes = TinySizes()):
    from diffusers import AutoencoderKLHunyuanVideo

    from .transformer import VinoTransformer3DModel

    torch.manual_seed(seed)
    transformer = VinoTransformer3DModel(
        in_channels=sizes.latent_channels,
        out_channels=sizes.latent_channels,
        num_attention_heads=2,
        attention_head_dim=sizes.inner_dim // 2,
        num_layers=1,
        num_single_layers=1,
        num_refiner_layers=1,
        mlp_ratio=2.0,
        text_embed_dim=sizes.text_embed_dim,
        pooled_projection_dim=sizes.pooled_projection_dim,
        rope_axes_dim=sizes.rope_axes_dim,
    )
    (root / "transformer").mkdir(parents=True, exist_ok=True)
    config = dict(transformer.config)
    config["_class_name"] = "HunyuanVideoTransformer3DModel"
    (root / "transformer" / "config.json").write_text(json.dumps(config, indent=1))
    vae = AutoencoderKLHunyuanVideo(
        latent_channels=sizes.latent_channels,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        norm_num_groups=4,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
    )
    vae.save_pretrained(root / "vae")
    return transformer


def build_tiny_checkpoints(root: str | Path, seed: int = 0, sizes: TinySizes = TinySizes()) -> Path:
    """Write the tiny set under `root` (idempotent: an existing complete set is reused) and return `root`."""
    root = Path(root)
    ckpt = root / "vino.ckpt"
    if ckpt.is_file():
        return root
    build_qwen(root / "qwen", seed, text_hidden=sizes.text_hidden, vision_hidden=sizes.vision_hidden)
    transformer = build_hunyuan(root / "hunyuan", seed, sizes)
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.05

    state = {f"transformer.{k}": v for k, v in transformer.state_dict().items()}
    hidden = sizes.text_hidden
    state["mm_encoder.metaquery"] = rand(sizes.queries, hidden)
    for name, out in (("connector", sizes.text_embed_dim), ("connector_vae_branch", sizes.inner_dim)):
        state[f"mm_encoder.{name}.norm_qwen.weight"] = torch.ones(hidden)
        state[f"mm_encoder.{name}.mlp.0.weight"] = rand(4 * out, hidden)
        state[f"mm_encoder.{name}.mlp.0.bias"] = torch.zeros(4 * out)
        state[f"mm_encoder.{name}.mlp.2.weight"] = rand(out, 4 * out)
        state[f"mm_encoder.{name}.mlp.2.bias"] = torch.zeros(out)
    torch.save(state, root / "tmp.ckpt")
    (root / "tmp.ckpt").rename(ckpt)
    return root
