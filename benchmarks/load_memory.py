"""Host memory of converting and loading an MMDiT, against its bytes (the issue's bound: about 1.2x).

    python -m benchmarks.load_memory                    # a ~1 GiB bf16 MMDiT (released layout, 1536 wide), CPU

Writes a random bf16 `vino.ckpt` holding only the MMDiT and the encoder heads, then reports the peak resident
memory added by the conversion and by `load_transformer` onto the CPU: anonymous (RssAnon) and in all (VmRSS,
memory-mapped files included). On the CPU the loaded model is itself host memory (ideal: 1.0x in all).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from benchmarks.gpu_check import HostMemorySampler
from vino_app.convert import convert_checkpoint
from vino_app.loading import load_transformer
from vino_app.plan import RELEASED
from vino_app.tiny import QUANTIZABLE, build_tiny_checkpoints
from vino_app.transformer import VinoTransformer3DModel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", type=int, default=12, help="attention heads of 128 (the release: 24)")
    parser.add_argument("--layers", type=int, default=4, help="dual-stream blocks (the release: 20; single: twice)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = build_tiny_checkpoints(Path(tmp) / "tiny", sizes=QUANTIZABLE)
        config = json.loads(RELEASED.read_text())["transformer"]
        config.update(num_attention_heads=args.heads, num_layers=args.layers, num_single_layers=2 * args.layers)
        config.update(in_channels=8, out_channels=8, text_embed_dim=64, pooled_projection_dim=64)
        model = VinoTransformer3DModel(**config).to(torch.bfloat16)
        base = Path(tmp) / "hunyuan"
        model.save_config(base / "transformer")
        heads = {k: v for k, v in torch.load(root / "vino.ckpt", weights_only=True).items() if k.startswith("mm_")}
        inner = args.heads * 128
        for name in ("connector_vae_branch.mlp.0.weight", "connector_vae_branch.mlp.0.bias"):
            heads[f"mm_encoder.{name}"] = torch.zeros(4 * inner, *heads[f"mm_encoder.{name}"].shape[1:])
        heads["mm_encoder.connector_vae_branch.mlp.2.weight"] = torch.zeros(inner, 4 * inner)
        heads["mm_encoder.connector_vae_branch.mlp.2.bias"] = torch.zeros(inner)
        state = {f"transformer.{k}": v for k, v in model.state_dict().items()} | heads
        nbytes = sum(v.numel() * v.element_size() for v in model.state_dict().values())
        checkpoint = Path(tmp) / "vino.ckpt"
        torch.save(state, checkpoint)
        del model, state
        with HostMemorySampler() as converting, HostMemorySampler(field="VmRSS") as converting_all:
            converted = convert_checkpoint(checkpoint, str(base), str(root / "qwen"), Path(tmp) / "cache")
        with HostMemorySampler() as loading, HostMemorySampler(field="VmRSS") as loading_all:
            model = load_transformer(converted.transformer, torch.bfloat16, "cpu")
            params = sum(p.numel() for p in model.parameters())
    gib = nbytes / 2**30
    print(f"MMDiT {params / 1e9:.2f} B params, {gib:.2f} GiB bf16; peak added RssAnon / VmRSS (mapped files too):")
    for what, anon, total in (("conversion", converting, converting_all), ("load_transformer", loading, loading_all)):
        print(f"  {what}: {anon.gib:.2f} GiB ({anon.gib / gib:.2f}x) / {total.gib:.2f} GiB ({total.gib / gib:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
