"""Does the frozen VLM bind attributes to shapes? Linear probes of its conditioning features (issue 20's gate).

`python -m benchmarks.binding_probe [--qwen models/vino-world/qwen] [--n 3000]`

Features: the VLM's penultimate hidden states (what VINO's connectors read) of the t2i chat prompt, averaged over
the prompt's tokens: `[N, hidden]`. Captions are the world's long captions of two-shape scenes (distinct colours
and kinds). For each caption and each of its two colours c, a probe is asked "the place (kind) of the shape whose
colour is c": one multinomial logistic regression per colour, trained on 80 % of the captions and scored on the
rest. It prints accuracy, how often the probe names the *other* shape's attribute (a binding error), and the
chance levels; the single-shape control reads colour, kind and place of one-shape captions. Last line:
`binding_place=X binding_kind=Y` (the gate: both >= 0.95).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

from vino_app.prompt import chat_text
from vino_app.world import demo_model_dir
from vino_app.world.language import long_caption
from vino_app.world.scene import COLOURS, KINDS, random_scene

TRAIN_FRACTION = 0.8
BATCH = 64


@torch.no_grad()
def prompt_features(
    vlm: Qwen3VLForConditionalGeneration, processor, captions: list[str], layer: int = -2
) -> torch.Tensor:
    """Mean hidden state of `layer` (VINO's: the penultimate) over each chat prompt's tokens: `[N, hidden]`."""
    out = []
    for start in range(0, len(captions), BATCH):
        texts = [chat_text(c, 0, False) for c in captions[start : start + BATCH]]
        batch = processor.tokenizer(texts, return_tensors="pt", padding=True)
        hidden = vlm.model(**batch, output_hidden_states=True, use_cache=False).hidden_states[layer]
        mask = batch["attention_mask"].unsqueeze(-1).float()
        out.append((hidden.float() * mask).sum(1) / mask.sum(1))
    return torch.cat(out)


def fit_probe(x: torch.Tensor, y: torch.Tensor, classes: int, steps: int = 200) -> torch.nn.Linear:
    """Multinomial logistic regression on standardised features (L-BFGS, a little weight decay)."""
    probe = torch.nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe(x), y) + 1e-4 * probe.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe


def standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return (train - mean) / std, (test - mean) / std


def place_index(shape) -> int:
    row, col = shape.cell
    return 3 * row + col


ATTRIBUTES = {"place": (place_index, 9), "kind": (lambda s: KINDS.index(s.kind), len(KINDS))}


def binding_scores(features: torch.Tensor, scenes: list, split: int) -> dict[str, tuple[float, float]]:
    """Per attribute: (accuracy, other-shape rate) of the per-colour probes on the held-out captions."""
    scores = {}
    for name, (read, classes) in ATTRIBUTES.items():
        hits = others = total = 0
        for colour in COLOURS:
            rows = [(i, s) for i, scene in enumerate(scenes) for s in scene.shapes if s.colour == colour]
            train = [(i, s) for i, s in rows if i < split]
            test = [(i, s) for i, s in rows if i >= split]
            other = {i: next(o for o in scenes[i].shapes if o is not s) for i, s in rows}
            x_train, x_test = standardise(features[[i for i, _ in train]], features[[i for i, _ in test]])
            probe = fit_probe(x_train, torch.tensor([read(s) for _, s in train]), classes)
            predicted = probe(x_test).argmax(1).tolist()
            hits += sum(p == read(s) for p, (_, s) in zip(predicted, test))
            others += sum(p == read(other[i]) for p, (i, _) in zip(predicted, test))
            total += len(test)
        scores[name] = (hits / total, others / total)
    return scores


def single_shape_scores(features: torch.Tensor, scenes: list, split: int) -> dict[str, float]:
    """Accuracy of plain probes reading colour, kind and place of one-shape captions."""
    reads = {"colour": (lambda s: list(COLOURS).index(s.colour), len(COLOURS)), **ATTRIBUTES}
    x_train, x_test = standardise(features[:split], features[split:])
    scores = {}
    for name, (read, classes) in reads.items():
        labels = torch.tensor([read(scene.shapes[0]) for scene in scenes])
        probe = fit_probe(x_train, labels[:split], classes)
        scores[name] = float((probe(x_test).argmax(1) == labels[split:]).float().mean())
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qwen", type=Path, default=demo_model_dir() / "qwen", help="a Qwen3-VL folder")
    parser.add_argument("--n", type=int, default=3000, help="two-shape captions (and as many one-shape captions)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layer", type=int, default=-2, help="hidden-state index (-2: the penultimate, VINO's)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    vlm = Qwen3VLForConditionalGeneration.from_pretrained(args.qwen, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(args.qwen)
    split = int(TRAIN_FRACTION * args.n)

    pairs = [random_scene(rng, 2) for _ in range(args.n)]
    singles = [random_scene(rng, 1) for _ in range(args.n)]
    single = single_shape_scores(
        prompt_features(vlm, processor, [long_caption(s) for s in singles], args.layer), singles, split
    )
    binding = binding_scores(
        prompt_features(vlm, processor, [long_caption(s) for s in pairs], args.layer), pairs, split
    )

    print(
        f"VLM {args.qwen}, hidden states {args.layer}: {args.n} captions of each kind, "
        f"{args.n - split} held out, seed {args.seed}"
    )
    print("single shape   " + "  ".join(f"{k} {v:.3f} (chance {1 / c:.2f})" for (k, v), c in
                                         zip(single.items(), (len(COLOURS), 9, len(KINDS)))))
    for name, (accuracy, other) in binding.items():
        classes = ATTRIBUTES[name][1]
        print(f"binding {name:6s} accuracy {accuracy:.3f} (chance {1 / classes:.2f}), other shape's {other:.3f}")
    print(f"binding_place={binding['place'][0]:.3f} binding_kind={binding['kind'][0]:.3f}")


if __name__ == "__main__":
    main()
