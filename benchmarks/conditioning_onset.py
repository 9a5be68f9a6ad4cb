"""How many steps a fresh world MMDiT needs before it tells prompts apart, per training noise shift.

    python -m benchmarks.conditioning_onset --shifts 1 3 --steps 2400 --threads 1
    python -m benchmarks.conditioning_onset --requests place --shifts 3 --steps 4800 --threads 1

The smallest version of the world model's problem: 8 fixed t2i training requests (`--requests mixed`: held-in
requests with long captions; `--requests place`: a big red square on white in 8 of the 9 places, so the prompts
differ only by the place words), their text-stream tokens from the
shipped model's frozen Qwen3-VL with fresh (untrained, fixed) queries and connectors, and a fresh MMDiT trained on
them one request per step (flow matching at `train.training_sigma` noise levels, AdamW 1e-3, clipping 1). Every
`--every` steps it prints the loss at noise 0.95 (fixed noise) with each request's own prompt and with the next
request's prompt: the two stay equal until the MMDiT uses the text.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vino_app.evaluate import target_latents
from vino_app.guidance import cfg_branches
from vino_app.pipeline import TIMESTEP_SCALE
from vino_app.train import training_sigma
from vino_app.world import demo_model_dir
from vino_app.world.model import WorldModelConfig, fresh_pipeline, new_transformer
from vino_app.world.language import long_caption
from vino_app.world.samples import WorldSample, make_sample
from vino_app.world.scene import CELL_CENTRES, Scene, Shape, render

REQUESTS = 8
PROBE_SIGMA = 0.95


def requests(kind: str) -> list[WorldSample]:
    """The 8 training requests: held-in t2i requests with long captions, or one shape in 8 places."""
    if kind == "mixed":
        rng = np.random.default_rng(0)
        return [make_sample(rng, "t2i", long=True) for _ in range(REQUESTS)]
    cells = [divmod(c, 3) for c in range(9) if c != 4][:REQUESTS]
    scenes = [
        Scene("white", (Shape("square", "red", "big", CELL_CENTRES[col], CELL_CENTRES[row]),)) for row, col in cells
    ]
    return [WorldSample("t2i", long_caption(s), [], None, render(s)[None], [s]) for s in scenes]


def text_streams(pipe, prompts: list[str]) -> list[torch.Tensor]:
    """Each prompt's text-stream tokens `[1, L, text_embed_dim]`."""
    request = pipe.prepare_request([], None, "t2i", 1, 64, 64, None, None)
    with torch.no_grad():
        return [
            pipe.encode_branch(cfg_branches(p, "", 0, False, False, 2.0, 1.0)[0], request).text_embeds for p in prompts
        ]


def onset(
    shift: float, steps: int, every: int, texts, latents, config: WorldModelConfig
) -> list[tuple[int, float, float]]:
    """(step, loss with the own prompt, loss with the next request's prompt) every `every` steps."""
    torch.manual_seed(1)
    transformer = new_transformer(config)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)
    probe_noise = torch.randn(latents[0].shape, generator=torch.Generator().manual_seed(5))

    def loss(i: int, text: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        noisy = (1 - sigma) * latents[i] + sigma * noise
        mask = torch.ones(text.shape[:2])
        return torch.nn.functional.mse_loss(transformer(noisy, sigma * TIMESTEP_SCALE, text, mask), noise - latents[i])

    rows = []
    for step in range(steps + 1):
        if step % every == 0:
            with torch.no_grad():
                probe = torch.tensor([PROBE_SIGMA])
                own = np.mean([loss(i, texts[i], probe, probe_noise).item() for i in range(REQUESTS)])
                swapped = np.mean(
                    [loss(i, texts[(i + 1) % REQUESTS], probe, probe_noise).item() for i in range(REQUESTS)]
                )
            rows.append((step, own, swapped))
            print(f"shift {shift:g} step {step}: own prompt {own:.3f}, next request's prompt {swapped:.3f}", flush=True)
        i = step % REQUESTS
        sigma = training_sigma(generator, shift)
        loss(i, texts[i], sigma, torch.randn(latents[i].shape, generator=generator)).backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", choices=["mixed", "place"], default="mixed", help="what the 8 prompts differ by")
    parser.add_argument("--shifts", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--every", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe, config = fresh_pipeline(demo_model_dir())
    samples = requests(args.requests)
    texts = text_streams(pipe, [s.prompt for s in samples])
    with torch.no_grad():
        latents = [target_latents(pipe, s) for s in samples]
    results = {shift: onset(shift, args.steps, args.every, texts, latents, config) for shift in args.shifts}
    print(f"\nloss at noise {PROBE_SIGMA}, own prompt / next request's prompt\n")
    print("| step | " + " | ".join(f"shift {s:g}" for s in args.shifts) + " |\n|---|" + "---|" * len(args.shifts))
    for k, (step, *_) in enumerate(results[args.shifts[0]]):
        print(
            f"| {step} | " + " | ".join(f"{results[s][k][1]:.2f} / {results[s][k][2]:.2f}" for s in args.shifts) + " |"
        )


if __name__ == "__main__":
    main()
