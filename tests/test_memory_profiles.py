"""Every memory profile loads and generates on the CPU through `VinoPipeline.from_pretrained(..., device="cpu")`.

bitsandbytes runs its CPU kernels; only diffusers' "No GPU found" check is bypassed (`gpu_check_bypassed`, in
`benchmarks/gpu_check.py`, whose `--scale tiny` needs it too).
Offloading onloads to the CPU, and `OnloadRecorder` proves every weight a request uses was onloaded first.
"""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import bitsandbytes as bnb
import pytest
import torch
from accelerate.hooks import CpuOffload, UserCpuOffloadHook
from diffusers.hooks import apply_group_offloading
from diffusers.hooks.group_offloading import ModuleGroup
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from benchmarks.gpu_check import gpu_check_bypassed
from vino_app import MemoryProfile, VinoPipeline
from vino_app.tiny import QUANTIZABLE, build_tiny_checkpoints

INT8 = MemoryProfile("int8", "int8 MMDiT and VLM", quantize_transformer="int8", quantize_vlm="int8", offload="model")
NF4, LLM_INT8 = bnb.nn.Linear4bit, bnb.nn.Linear8bitLt
QUANTIZED = {"16gb": (NF4, NF4), "24gb": (NF4, None), "int8": (LLM_INT8, LLM_INT8)}
# First-step velocity, relative L2 error against the unquantized bf16 run of the same request. Seen with these
# requests on the 2-core CPU dev machine (2026-12-01, n = 3 each): NF4 0.089-0.092, int8 0.008-0.009;
# offloading changes nothing (exactly equal).
TOLERANCE = {"16gb": 0.15, "24gb": 0.15, "int8": 0.02, "8gb": 0.0}
AREA = 64 * 64
METADATA = {"__get__", "is_floating_point", "dim", "size", "numel", "element_size"}  # reading these uses no weights
REQUESTS = {
    "t2i": dict(prompt="a red circle"),
    "ti2i_image_cfg": dict(prompt="Make Image 1 blue", images=["wide"], image_guidance_scale=2.0),
    "tv2v": dict(prompt="Turn Video 1 purple", video=True, num_frames=5),
}


@pytest.fixture(scope="module")
def quant_root(tmp_path_factory):
    return build_tiny_checkpoints(tmp_path_factory.mktemp("tiny-quantizable"), sizes=QUANTIZABLE)


def load(root, profile) -> VinoPipeline:
    with gpu_check_bypassed():
        pipe = VinoPipeline.from_pretrained(
            root / "vino.ckpt", vlm=str(root / "qwen"), base=str(root / "hunyuan"), memory_profile=profile, device="cpu"
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, media, request: dict, steps: int = 1):
    """The request's output and the MMDiT's first velocity (the positive branch at the first step)."""
    velocities = []
    hook = pipe.transformer.register_forward_hook(lambda m, a, out: velocities.append(out.float()))
    try:
        kwargs = {k: v for k, v in request.items() if k not in ("images", "video")}
        images = [media[name] for name in request.get("images", [])]
        video = media["video"] if request.get("video") else None
        out = pipe(images=images, video=video, num_inference_steps=steps, area=AREA, seed=3, **kwargs)
    finally:
        hook.remove()
    return out, velocities[0]


@pytest.fixture(scope="module")
def reference(quant_root, media):
    pipe = load(quant_root, MemoryProfile("bf16", "unquantized bf16 on the CPU"))
    return {name: run(pipe, media, request)[1] for name, request in REQUESTS.items()}


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# Whole requests per profile; the onload check runs on the ones named (ti2i alone runs the VLM with an image, the
# MMDiT with three CFG branches, VAE encode and decode).
CHECKED = ["ti2i_image_cfg"]
ALL = list(REQUESTS)
PLAN = {"16gb": (ALL, CHECKED), "int8": (ALL, CHECKED), "24gb": (CHECKED, CHECKED), "8gb": (ALL, ALL)}


@pytest.mark.parametrize("profile", list(PLAN))
def test_profile_generates_every_request_close_to_bf16(quant_root, media, reference, profile):
    pipe = load(quant_root, INT8 if profile == "int8" else profile)
    mmdit_layer, vlm_layer = QUANTIZED.get(profile, (None, None))
    for model, layer in ((pipe.transformer, mmdit_layer), (pipe.condition_encoder.mm_encoder, vlm_layer)):
        quantized = [m for m in model.modules() if isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt))]
        if layer is None:
            assert not quantized
        else:
            assert quantized and all(type(m) is layer for m in quantized)
            assert sum(isinstance(m, torch.nn.Linear) and not isinstance(m, layer) for m in model.modules()) <= 1
    requests, checked = PLAN[profile]
    for name in requests:
        with OnloadRecorder(pipe, active=name in checked) as recorder:
            out, velocity = run(pipe, media, REQUESTS[name])
        assert recorder.violations == [], f"{profile} {name}: weights used before they were onloaded"
        assert out.task == name.split("_")[0] and out.frames.std() > 0
        error = relative_error(velocity, reference[name])
        assert error <= TOLERANCE[profile], f"{profile} {name}: first-step velocity off by {error:.3f}"
        if profile == "8gb":
            assert torch.equal(velocity, reference[name])


class OnloadRecorder(TorchFunctionMode):
    """Records the offload hooks' onload / offload calls (diffusers' groups, accelerate's model hooks) and checks,
    at every torch call of a request, that each pipeline weight passed to it is onloaded. A forward pre-hook on every
    leaf module refreshes which tensors are weights (bitsandbytes may replace parameter objects) and counts the leaves
    that ran. Models without any offload hook stay resident and count as onloaded."""

    def __init__(self, pipe: VinoPipeline, active: bool = True):
        super().__init__()
        self.active = active
        self.models = [pipe.condition_encoder, pipe.transformer, pipe.vae]
        self.weights: dict[int, tuple[str, torch.Tensor]] = {}  # the tensor is kept: its id is not reused
        self.onloaded: set[int] = set()
        self.violations: list[str] = []
        self.checked = 0
        self._paused = False

    @staticmethod
    def _tensors(modules) -> list[torch.Tensor]:
        return [t for m in modules for t in (*m.parameters(), *m.buffers())]

    def _note(self, module: torch.nn.Module, prefix: str = "") -> None:
        for name, tensor in (*module.named_parameters(prefix), *module.named_buffers(prefix)):
            self.weights[id(tensor)] = (name, tensor)

    @contextmanager
    def _hook_call(self):
        paused, self._paused = self._paused, True  # the hooks' own moves are not uses
        try:
            yield
        finally:
            self._paused = paused

    def __enter__(self):
        if not self.active:
            return self
        recorder = self
        group_onload, group_offload = ModuleGroup.onload_, ModuleGroup.offload_
        model_onload, model_offload = CpuOffload.pre_forward, UserCpuOffloadHook.offload

        def onload_group(group):
            with recorder._hook_call():
                group_onload(group)
            recorder.onloaded |= {id(t) for t in (*recorder._tensors(group.modules), *group.parameters, *group.buffers)}

        def offload_group(group):
            recorder.onloaded -= {id(t) for t in (*recorder._tensors(group.modules), *group.parameters, *group.buffers)}
            with recorder._hook_call():
                group_offload(group)

        def onload_model(hook, module, *args, **kwargs):
            with recorder._hook_call():
                result = model_onload(hook, module, *args, **kwargs)
            recorder.onloaded |= {id(t) for t in recorder._tensors([module])}
            return result

        def offload_model(hook):
            recorder.onloaded -= {id(t) for t in recorder._tensors([hook.model])}
            with recorder._hook_call():
                model_offload(hook)

        self._patches = [
            mock.patch.object(ModuleGroup, "onload_", onload_group),
            mock.patch.object(ModuleGroup, "offload_", offload_group),
            mock.patch.object(CpuOffload, "pre_forward", onload_model),
            mock.patch.object(UserCpuOffloadHook, "offload", offload_model),
        ]
        for patch in self._patches:
            patch.start()
        self._handles = []
        for model in self.models:
            self._note(model, type(model).__name__)
            if getattr(model, "_hf_hook", None) is None and getattr(model, "_diffusers_hook", None) is None:
                self.onloaded |= {id(t) for t in self._tensors([model])}  # resident: no offload hook moves it
            for name, leaf in model.named_modules(prefix=type(model).__name__):
                if not list(leaf.children()):
                    self._handles.append(leaf.register_forward_pre_hook(lambda m, a, name=name: self._note(m, name)))
        return super().__enter__()

    def __exit__(self, *exc):
        if not self.active:
            return None
        for handle in self._handles:
            handle.remove()
        for patch in self._patches:
            patch.stop()
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self._paused and getattr(func, "__name__", "") not in METADATA:
            for tensor in tree_leaves((args, kwargs)):
                if isinstance(tensor, torch.Tensor) and id(tensor) in self.weights:
                    self.checked += 1
                    if id(tensor) not in self.onloaded:
                        name = getattr(func, "__name__", func)
                        self.violations.append(f"{self.weights[id(tensor)][0]} used by {name}")
        return func(*args, **kwargs)


def old_group_offloading(pipe: VinoPipeline) -> None:
    """The 8gb wiring before this fix: one block-level group per model (the VAE's never onloaded)."""
    for name in ("condition_encoder", "transformer", "vae"):
        model = getattr(pipe, name)
        apply_group_offloading(
            model, onload_device=torch.device("cpu"), offload_type="block_level", num_blocks_per_group=1
        )


def test_old_vae_wiring_is_caught(tiny_root, media):
    pipe = VinoPipeline.from_pretrained(
        tiny_root / "vino.ckpt", vlm=str(tiny_root / "qwen"), base=str(tiny_root / "hunyuan"), memory_profile="cpu"
    )
    pipe.set_progress_bar_config(disable=True)
    old_group_offloading(pipe)
    with OnloadRecorder(pipe) as recorder:
        pipe("Make Image 1 blue", [media["wide"]], num_inference_steps=1, height=64, width=64)
    used_offloaded = {v.split(" ")[0] for v in recorder.violations}
    assert any(name.startswith("AutoencoderKLHunyuanVideo.encoder.") for name in used_offloaded)
    assert any(name.startswith("AutoencoderKLHunyuanVideo.decoder.") for name in used_offloaded)
    assert recorder.checked > 100
