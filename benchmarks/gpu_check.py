"""Every memory profile on full-size random weights in the released layout (nothing to download).

    python -m benchmarks.gpu_check                      # one GPU: full, 24gb, 16gb, 8gb; about 33 GB of disk
    python -m benchmarks.gpu_check --scale tiny         # the quantizable tiny set on the CPU (what the tests run)

On the CPU (`--scale tiny`) diffusers' "No GPU found" check is bypassed (`gpu_check_bypassed`), as in the tests.

The released configs (`vino_app/configs/released.json`) are built with random weights on the device and written
once as a converted checkpoint (`convert.py`'s layout) plus `qwen/` (a small trained tokenizer: the weights are
random anyway) and `hunyuan/vae`; each profile then loads through `VinoPipeline.from_converted`, the loading path
of `from_pretrained`. Per profile it prints load seconds, the host memory the load added (its peak, to compare
with the largest model's bytes: 23.9 GiB for the bf16 MMDiT), peak device memory (CUDA max allocated; on the CPU the
process's peak RSS) and seconds per step (the last of `--steps`) for a 640x640 image and a 480x848x85 video, and
the relative L2 error of the first-step velocity of the image request against the first profile listed (bf16).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import torch
from diffusers.quantizers.bitsandbytes import bnb_quantizer
from safetensors.torch import save_file

from vino_app import VinoPipeline
from vino_app.convert import HEADS_FILENAME, REPORT_FILENAME, ConvertedCheckpoint
from vino_app.memory import PROFILES
from vino_app.plan import RELEASED
from vino_app.tiny import QUANTIZABLE, build_tiny_checkpoints, build_tokenizer, save_qwen

GPU_PROFILES = ["full", "24gb", "16gb", "8gb"]
SIZES = {  # (height, width, frames)
    "full": {"image": (640, 640, 1), "video": (480, 848, 85)},
    "tiny": {"image": (64, 64, 1), "video": (64, 64, 5)},
}
PROMPT = "A red circle on the left of a blue square, studio light."


@contextmanager
def gpu_check_bypassed():
    """diffusers' bitsandbytes quantizers raise "No GPU found" before loading; while their `validate_environment`
    runs (and only then) CUDA reads as available. Their other checks still run; transformers has no such check."""
    originals = {}
    for cls in (bnb_quantizer.BnB4BitDiffusersQuantizer, bnb_quantizer.BnB8BitDiffusersQuantizer):
        originals[cls] = original = cls.validate_environment

        def validate(self, *args, _original=original, **kwargs):
            with mock.patch.object(torch.cuda, "is_available", lambda: True):
                return _original(self, *args, **kwargs)

        cls.validate_environment = validate
    try:
        yield
    finally:
        for cls, original in originals.items():
            cls.validate_environment = original


def _converted(root: Path, transformer, heads: dict[str, torch.Tensor]) -> ConvertedCheckpoint:
    """`transformer` and the encoder heads written in the converted layout under `root/converted`."""
    folder = root / "converted"
    transformer.save_pretrained(folder / "transformer")
    save_file({k: v.contiguous().cpu() for k, v in heads.items()}, folder / HEADS_FILENAME)
    (folder / REPORT_FILENAME).write_text(json.dumps({"checkpoint": "random", "reports": []}))
    return ConvertedCheckpoint(folder, folder / "transformer", None, folder / HEADS_FILENAME)


def write_full_release(root: Path, device: str) -> tuple[ConvertedCheckpoint, str, str]:
    """Random full-size weights in bf16, built on `device`, written under `root`."""
    from diffusers import AutoencoderKLHunyuanVideo

    from vino_app.encoder import VinoConnector
    from vino_app.transformer import VinoTransformer3DModel

    config = json.loads(RELEASED.read_text())
    with torch.device(device):
        torch.set_default_dtype(torch.bfloat16)
        try:
            save_qwen(root / "qwen", 0, config["vlm"], build_tokenizer(), config["vlm"]["text_config"]["vocab_size"])
            transformer = VinoTransformer3DModel(**config["transformer"])
            inner = transformer.config.num_attention_heads * transformer.config.attention_head_dim
            hidden = config["vlm"]["text_config"]["hidden_size"]
            heads = {"metaquery": torch.randn(config["num_queries"], hidden) * 0.02}
            for name, out in (("connector", transformer.config.text_embed_dim), ("connector_vae_branch", inner)):
                heads.update({f"{name}.{k}": v for k, v in VinoConnector(hidden, 4 * out, out).state_dict().items()})
            AutoencoderKLHunyuanVideo(**config["vae"]).save_pretrained(root / "hunyuan" / "vae")
        finally:
            torch.set_default_dtype(torch.float32)
    converted = _converted(root, transformer, heads)
    del transformer
    return converted, str(root / "qwen"), str(root / "hunyuan")


def write_tiny_release(root: Path) -> tuple[ConvertedCheckpoint, str, str]:
    """The quantizable tiny set, converted."""
    from vino_app.convert import convert_checkpoint

    tiny = build_tiny_checkpoints(root / "tiny", sizes=QUANTIZABLE)
    converted = convert_checkpoint(tiny / "vino.ckpt", str(tiny / "hunyuan"), str(tiny / "qwen"), root / "cache")
    return converted, str(tiny / "qwen"), str(tiny / "hunyuan")


def peak_gib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class HostMemorySampler:
    """The process's peak resident memory above its level at start, sampled every `interval` seconds from
    /proc/self/status in a thread (Linux), in GiB. `field`: "RssAnon" (memory-mapped weight files do not count)
    or "VmRSS" (they do)."""

    def __init__(self, interval: float = 0.05, field: str = "RssAnon"):
        self.interval, self.field, self.peak, self._stop = interval, field, 0, threading.Event()

    def rss(self) -> int:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(self.field + ":"))
        return int(line.split()[1]) * 1024

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.rss() - self.start)

    def __enter__(self):
        self.start = self.rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss() - self.start)
        self.gib = self.peak / 2**30


def measure(pipe: VinoPipeline, size: tuple[int, int, int], steps: int) -> tuple[float, torch.Tensor]:
    """Seconds of the last step and the first MMDiT output (the positive branch's first velocity)."""
    stamps, velocities = [time.perf_counter()], []
    hook = pipe.transformer.register_forward_hook(lambda m, a, out: velocities.append(out.float().cpu()))
    height, width, frames = size
    try:
        pipe(
            PROMPT,
            height=height,
            width=width,
            num_frames=frames,
            num_inference_steps=steps,
            seed=0,
            callback_on_step_end=lambda *a: stamps.append(time.perf_counter()),
        )
    finally:
        hook.remove()
    return stamps[-1] - stamps[-2], velocities[0]


def run(scale: str, profiles: list[str], steps: int, root: Path) -> list[dict]:
    device = "cuda" if scale == "full" else "cpu"
    if scale == "full":
        converted, vlm, base = write_full_release(root, device)
        torch.cuda.empty_cache()
    else:
        converted, vlm, base = write_tiny_release(root)
    rows, reference = [], None
    for name in profiles:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        with HostMemorySampler() as host:
            pipe = VinoPipeline.from_converted(converted, vlm, base, PROFILES[name], device=device)
        pipe.set_progress_bar_config(disable=True)
        load_s = time.perf_counter() - start
        image_s, velocity = measure(pipe, SIZES[scale]["image"], steps)
        video_s, _ = measure(pipe, SIZES[scale]["video"], steps)
        reference = velocity if reference is None else reference
        error = float((velocity - reference).norm() / reference.norm())
        rows.append(
            {
                "profile": name,
                "load_s": load_s,
                "load_host_gib": host.gib,
                "peak_gib": peak_gib(device),
                "image_s_per_step": image_s,
                "video_s_per_step": video_s,
                "velocity_rel_error": error,
                "finite": bool(velocity.isfinite().all()),
            }
        )
        del pipe
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def table(rows: list[dict], scale: str) -> str:
    image, video = ("x".join(map(str, SIZES[scale][k])) for k in ("image", "video"))
    against = rows[0]["profile"]
    header = (
        f"| profile | load s | host GiB loading | peak GiB | s/step {image} | s/step {video} "
        f"| first-step rel. error vs {against} |"
    )
    lines = [header, "|---|---|---|---|---|---|---|"]
    for r in rows:
        error = f"{r['velocity_rel_error']:.4f}" + ("" if r["finite"] else " (non-finite)")
        lines.append(
            f"| {r['profile']} | {r['load_s']:.1f} | {r['load_host_gib']:.1f} | {r['peak_gib']:.1f} | "
            f"{r['image_s_per_step']:.2f} | "
            f"{r['video_s_per_step']:.2f} | {error} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["full", "tiny"], default="full")
    parser.add_argument("--profiles", nargs="+", choices=list(PROFILES), default=GPU_PROFILES)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--workdir", help="where the random release is written (default: a temporary folder)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if args.scale == "full" and not torch.cuda.is_available():
        parser.error("--scale full needs a CUDA GPU; use --scale tiny on the CPU")
    bypass = gpu_check_bypassed() if args.scale == "tiny" else nullcontext()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp, bypass:
        rows = run(args.scale, args.profiles, args.steps, Path(tmp))
    device = torch.cuda.get_device_name(0) if args.scale == "full" else "CPU"
    print(f"{device}, torch {torch.__version__}, {args.steps} steps, {time.strftime('%Y-%m-%d')}")
    print(table(rows, args.scale))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
