"""`use_onednn_conv3d`: the same results as the stock Conv3d, on oneDNN instead of PyTorch's reference kernel."""

from __future__ import annotations

import copy

import torch
from torch import nn

from vino_app.cpu_convolution import OneDnnConv3d, use_onednn_conv3d


def kernels_run(module: nn.Module, x: torch.Tensor) -> set[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        module(x).sum().backward()
    return {event.key for event in profile.key_averages()}


def test_onednn_conv3d_matches_the_stock_layer_and_avoids_the_reference_kernel():
    torch.manual_seed(0)
    stock = nn.Sequential(nn.Conv3d(3, 16, 3, padding=1), nn.SiLU(), nn.Conv3d(16, 8, (1, 2, 2), stride=(1, 2, 2)))
    fast = use_onednn_conv3d(copy.deepcopy(stock))
    assert all(type(m) is OneDnnConv3d for m in fast if isinstance(m, nn.Conv3d))
    x = torch.randn(1, 3, 5, 16, 16)  # one request: PyTorch's stock dispatch takes its reference kernel here
    assert "aten::slow_conv3d_forward" in kernels_run(stock, x)
    assert "aten::slow_conv3d_forward" not in kernels_run(fast, x)
    x_stock, x_fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.testing.assert_close(fast(x_fast), stock(x_stock), rtol=1e-5, atol=1e-5)
    stock(x_stock).square().sum().backward()
    fast(x_fast).square().sum().backward()
    torch.testing.assert_close(x_fast.grad, x_stock.grad, rtol=1e-4, atol=1e-4)
    for a, b in zip(fast.parameters(), stock.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-4)
