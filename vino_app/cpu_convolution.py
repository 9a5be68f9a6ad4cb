"""3D convolutions on CPU through oneDNN at every input size.

For a float32 `Conv3d` on CPU PyTorch uses oneDNN only when the input is large enough (a batch above 1, or batch x
channels x frames x height above 20480 elements); below, it falls back to its reference `slow_conv3d` kernel. One
request is a batch of 1, and narrow VAEs (the world model's has 16-32 channels) then run every convolution on the
reference kernel, about ten times slower (`benchmarks/bench_cpu_convolution.py`). `OneDnnConv3d` sends those calls
to oneDNN (`aten.mkldnn_convolution`, the kernel the same layer gets at batch 2, with its own backward); other
devices, dtypes and padding modes take the stock path.
"""

from __future__ import annotations

import torch
from torch import nn


class OneDnnConv3d(nn.Conv3d):
    """`nn.Conv3d` whose float32 CPU calls always use oneDNN (same weights, same state dict)."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        stock = (
            input.device.type != "cpu"
            or input.dtype != torch.float32
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
            or not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
        )
        if stock:
            return super()._conv_forward(input, weight, bias)
        return torch.ops.aten.mkldnn_convolution(
            input, weight, bias, self.padding, self.stride, self.dilation, self.groups
        )


def use_onednn_conv3d(module: nn.Module) -> nn.Module:
    """Turn every plain `nn.Conv3d` inside `module` into an `OneDnnConv3d`, in place; returns `module`."""
    for layer in module.modules():
        if type(layer) is nn.Conv3d:
            layer.__class__ = OneDnnConv3d
    return module
