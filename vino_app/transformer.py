"""VINO's MMDiT: diffusers' HunyuanVideo transformer with VINO's interleaved latent stream.

The blocks, embedders and attention processors are diffusers' own; only the forward differs: the latent
stream is `[start] + ref_1 + [end] + ... + [start] + ref_n + [end] + target`, all on one 3D-RoPE timeline,
no pooled text projection, guidance embedded at 1000.
"""

from __future__ import annotations

import inspect

import torch
from diffusers import HunyuanVideoTransformer3DModel
from diffusers.configuration_utils import register_to_config
from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelModelPlan, ContextParallelOutput
from diffusers.models.embeddings import get_1d_rotary_pos_embed

from .parallel import check_cpu_split

GUIDANCE = 1000.0


def grid_positions(t0: int, frames: int, rows: int, cols: int, device: torch.device) -> torch.Tensor:
    """(t, row, col) of every token of a `frames x rows x cols` latent block starting at time `t0`: `[N, 3]`."""
    axes = [torch.arange(t0, t0 + frames), torch.arange(rows), torch.arange(cols)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3).to(device)


def joint_attention_mask(stream_length: int, text_mask: torch.Tensor) -> torch.Tensor:
    """Key mask `[B, 1, 1, stream_length + L]` of the blocks' joint attention (latent stream, then text) from the
    text mask `[B, L]`: padded text is no key."""
    stream = text_mask.new_ones(text_mask.shape[0], stream_length)
    return torch.cat([stream, text_mask], dim=1).bool()[:, None, None]


class StreamRotaryEmbedding(torch.nn.Module):
    """cos/sin tables `[N, head_dim]` for arbitrary (t, row, col) positions `[N, 3]`, per axis as diffusers builds
    them. A module without weights, so that context parallelism can split its output along the stream."""

    def __init__(self, axes_dim: tuple[int, ...], theta: float) -> None:
        super().__init__()
        self.axes_dim, self.theta = tuple(axes_dim), theta

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = [
            get_1d_rotary_pos_embed(dim, positions[:, axis].float(), self.theta, use_real=True)
            for axis, dim in enumerate(self.axes_dim)
        ]
        return torch.cat([f[0] for f in freqs], dim=1), torch.cat([f[1] for f in freqs], dim=1)


class VinoTransformer3DModel(HunyuanVideoTransformer3DModel):
    """`HunyuanVideoTransformer3DModel` whose forward takes reference latents and boundary tokens.

    `use_boundary_tokens=False` (an ablation, not the release) drops the start/end tokens from the latent stream
    and the timeline; every other config argument is HunyuanVideo's.
    """

    def __init__(self, use_boundary_tokens: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rotary_embedding = StreamRotaryEmbedding(self.config.rope_axes_dim, self.config.rope_theta)

    # diffusers reads config keys from the signature: HunyuanVideo's arguments plus the flag.
    __init__.__signature__ = inspect.signature(HunyuanVideoTransformer3DModel.__init__).replace(
        parameters=[
            *inspect.signature(HunyuanVideoTransformer3DModel.__init__).parameters.values(),
            inspect.Parameter("use_boundary_tokens", inspect.Parameter.KEYWORD_ONLY, default=True),
        ]
    )
    __init__ = register_to_config(__init__)

    def timeline_positions(
        self, reference_shapes: list[tuple[int, ...]], target_shape: tuple[int, ...], device
    ) -> torch.Tensor:
        """RoPE positions `[N, 3]` of the whole latent stream, in stream order.

        A start token takes (t, 0, 0) and advances t by 1; a latent block of T' frames takes the grid t..t+T'-1 x
        rows x cols and advances t by T'; an end token takes (t, 0, 0) and advances t by 1; the target starts at
        the final t. Shapes are latent shapes `[B, C, T, H, W]`. Without boundary tokens the blocks follow each other.
        """
        p, p_t = self.config.patch_size, self.config.patch_size_t
        point = lambda t: torch.tensor([[t, 0, 0]], device=device)  # noqa: E731
        boundary = int(self.config.use_boundary_tokens)
        positions, t = [], 0
        for shape in reference_shapes:
            frames = shape[2] // p_t
            block = grid_positions(t + boundary, frames, shape[3] // p, shape[4] // p, device)
            positions += [point(t), block, point(t + 1 + frames)] if boundary else [block]
            t += frames + 2 * boundary
        positions.append(grid_positions(t, target_shape[2] // p_t, target_shape[3] // p, target_shape[4] // p, device))
        return torch.cat(positions)

    @property
    def _cp_plan(self) -> dict[str, ContextParallelModelPlan]:
        """Context-parallel plan (diffusers' `enable_parallelism` reads it): the first block's latent stream
        (references, boundary tokens, target) and text are split along the sequence, and so are the stream's RoPE
        tables; every block works on its rank's shard (attention exchanges keys and values: Ulysses all-to-all or
        ring); the output norm's stream is gathered, so the target is sliced from the whole stream."""
        first = "transformer_blocks.0" if len(self.transformer_blocks) else "single_transformer_blocks.0"
        split = ContextParallelInput(split_dim=1, expected_dims=3)
        table = ContextParallelInput(split_dim=0, expected_dims=2, split_output=True)
        return {
            first: {"hidden_states": split, "encoder_hidden_states": split},
            "rotary_embedding": {0: table, 1: table},
            "norm_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
        }

    def condition_embedding(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """timestep_embedder(t) + guidance_embedder(1000); the pooled `text_embedder` is not applied."""
        embed = self.time_text_embed
        guidance = torch.full_like(timestep, GUIDANCE, dtype=torch.float32)
        temb = embed.timestep_embedder(embed.time_proj(timestep).to(dtype))
        return temb + embed.guidance_embedder(embed.time_proj(guidance).to(dtype))

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        reference_latents: list[torch.Tensor] = (),
        start_tokens: torch.Tensor | None = None,
        end_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity of the target latent for a batch of B samples (CFG branches) that share their references.

        hidden_states: noisy target `[B, C, T, H, W]`; timestep: `[1]` or `[B]` in 0..999; encoder_hidden_states:
        `[B, L, text_embed_dim]` with mask `[B, L]` (texts of different lengths padded at the end, mask 0 there: the
        padding is masked as a key in every block); reference_latents: `[1, C, T_i, H_i, W_i]` each, in prompt
        order, shared by the batch; start_tokens / end_tokens: `[B, len(reference_latents), inner_dim]`, per sample.
        Returns `[B, C, T, H, W]`.
        """
        batch, _, frames, height, width = hidden_states.shape
        p, p_t = self.config.patch_size, self.config.patch_size_t
        dtype = self.x_embedder.proj.weight.dtype
        target_tokens = (frames // p_t) * (height // p) * (width // p)

        stream = []
        for i, latent in enumerate(reference_latents):
            tokens = self.x_embedder(latent.to(dtype)).expand(batch, -1, -1)
            stream += (
                [start_tokens[:, i, None], tokens, end_tokens[:, i, None]]
                if self.config.use_boundary_tokens
                else [tokens]
            )
        stream.append(self.x_embedder(hidden_states.to(dtype)))
        hidden = torch.cat([s.to(dtype) for s in stream], dim=1)
        if self._parallel_config is not None and hidden.device.type == "cpu":
            check_cpu_split(hidden.shape[1], self._parallel_config)
        positions = self.timeline_positions([r.shape for r in reference_latents], hidden_states.shape, hidden.device)
        rotary = self.rotary_embedding(positions)

        timestep = timestep.expand(batch)
        temb = self.condition_embedding(timestep, dtype)
        # Unpadded text needs no mask, so the token refiner builds no [B, 1, L, L] one and attends unmasked
        padded = not bool(encoder_attention_mask.all())
        refiner_mask = encoder_attention_mask if padded else None
        context = self.context_embedder(encoder_hidden_states.to(dtype), timestep, refiner_mask)
        mask = joint_attention_mask(hidden.shape[1], encoder_attention_mask) if padded else None

        for block in self.transformer_blocks:
            hidden, context = block(hidden, context, temb, mask, rotary)
        for block in self.single_transformer_blocks:
            hidden, context = block(hidden, context, temb, mask, rotary)

        hidden = self.proj_out(self.norm_out(hidden, temb)[:, -target_tokens:])
        hidden = hidden.reshape(batch, frames // p_t, height // p, width // p, -1, p_t, p, p)
        return hidden.permute(0, 4, 1, 5, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(2, 3)
