"""Pre-train the world model's small Qwen3-VL on the world before it is frozen, as VINO's VLM is pretrained.

`python -m vino_app.world.vlm_pretraining --qwen models/vino-world/qwen --out DIR --steps 3000`

Three kinds of examples, drawn per step from `(seed, step)` alone, so that a run resumed from its last state
continues bit for bit as an uninterrupted one:
- language modelling on the world's captions, in the chat prompt the engine builds (loss on the caption);
- questions about a caption ("... What is the red shape?" -> "a big red circle at the top left"): the answer
  can only be read from features that bind each colour to its shape's kind, size and place;
- captioning through the vision tower ("Image 1: <image> Describe Image 1." -> the long caption);
- with `align_batch > 0`, an alignment of the two views of a scene through the same VLM: the mean penultimate
  hidden state (what VINO's connectors read) of its caption's prompt and of a prompt that shows only its picture,
  contrasted against the other scenes of the batch (InfoNCE). The MMDiT reads text tokens as a set (its RoPE
  covers the latents only), so a binding it can use must live in the token features, not in their order.
`benchmarks/binding_probe.py` is the gate on the result.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

from ..prompt import chat_text
from .language import long_caption, noun, place_phrase, short_caption
from .scene import Scene, random_scene, render

logger = logging.getLogger(__name__)
STATE_FILE = "training/vlm_state.pt"
END = "<|im_end|>"
IGNORE = -100
KIND_WEIGHTS = {"language": 0.3, "question": 0.4, "caption": 0.3}
SHAPE_COUNTS, COUNT_WEIGHTS = (1, 2, 3), (0.3, 0.4, 0.3)
TEMPERATURE = 0.07


def draw_example(rng: np.random.Generator) -> tuple[str, str, Image.Image | None]:
    """(prompt text the loss ignores, target text it is computed on, image or None) of one example."""
    kind = rng.choice(list(KIND_WEIGHTS), p=list(KIND_WEIGHTS.values()))
    scene = random_scene(rng, int(rng.choice(SHAPE_COUNTS, p=COUNT_WEIGHTS)))
    if kind == "language":
        caption = long_caption(scene) if rng.random() < 0.7 else short_caption(scene)
        return chat_text("", 0, False).split("user\n")[0] + "user\n", caption + END, None
    if kind == "question":
        shape = scene.shapes[int(rng.integers(len(scene.shapes)))]
        question = f"{long_caption(scene)} What is the {shape.colour} shape?"
        return chat_text(question, 0, False), f"a {noun(shape, size=True)} {place_phrase(shape)}{END}", None
    image = Image.fromarray(render(scene))
    return chat_text("Describe Image 1.", 1, False), long_caption(scene) + END, image


def collate(processor, examples: list[tuple[str, str, Image.Image | None]]):
    """Processor inputs for the concatenated texts (right-padded) and labels that ignore prompts and padding."""
    from qwen_vl_utils import fetch_image

    texts = [prompt + target for prompt, target, _ in examples]
    images = [fetch_image({"image": image}) for _, _, image in examples if image is not None] or None
    inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = IGNORE
    for row, (prompt, target, image) in enumerate(examples):
        target_ids = processor.tokenizer(target, add_special_tokens=False)["input_ids"]
        valid = int(inputs["attention_mask"][row].sum())
        if inputs["input_ids"][row, valid - len(target_ids) : valid].tolist() != target_ids:
            raise RuntimeError(f"the target of example {row} does not tokenise on its own: {target!r}")
        labels[row, : valid - len(target_ids)] = IGNORE
    return inputs, labels


def pooled_penultimate(model: Qwen3VLForConditionalGeneration, inputs) -> torch.Tensor:
    """Mean penultimate hidden state over each prompt's tokens: `[B, hidden]`."""
    hidden = model.model(**inputs, output_hidden_states=True, use_cache=False).hidden_states[-2]
    mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


def colour_swapped(scene: Scene) -> Scene:
    """The scene with its first two shapes' colours exchanged: the same words, bound the other way."""
    first, second, *rest = scene.shapes
    swapped = (replace(first, colour=second.colour), replace(second, colour=first.colour), *rest)
    return scene.with_shapes(swapped)


def alignment_loss(
    model: Qwen3VLForConditionalGeneration, processor, rng: np.random.Generator, size: int
) -> torch.Tensor:
    """Symmetric InfoNCE between the pooled caption prompts and picture prompts of `size` random scenes of two or
    three shapes. Each picture is also contrasted against its scene's caption with two colours swapped (a hard
    negative with the same words), so only features that bind a colour to its shape tell them apart."""
    from qwen_vl_utils import fetch_image

    scenes = [random_scene(rng, int(rng.choice(SHAPE_COUNTS[1:]))) for _ in range(size)]
    captions = [long_caption(s) for s in scenes] + [long_caption(colour_swapped(s)) for s in scenes]
    texts = processor(text=[chat_text(c, 0, False) for c in captions], padding=True, return_tensors="pt")
    images = [fetch_image({"image": Image.fromarray(render(s))}) for s in scenes]
    pictures = processor(text=[chat_text("", 1, False)] * size, images=images, padding=True, return_tensors="pt")
    views = [pooled_penultimate(model, inputs) for inputs in (texts, pictures)]
    text_view, picture_view = (torch.nn.functional.normalize(v - v.mean(0), dim=1) for v in views)
    logits = picture_view @ text_view.T / TEMPERATURE  # [size, 2 size]: true captions, then swapped ones
    target = torch.arange(size)
    to_text = torch.nn.functional.cross_entropy(logits, target)
    to_picture = torch.nn.functional.cross_entropy(logits[:, :size].T, target)
    return (to_text + to_picture) / 2


def pretrain(qwen: Path, out: Path, steps: int, batch: int, lr: float, seed: int, until: int | None = None,
             save_every: int = 250, align_batch: int = 0) -> Path:
    """Train a copy of the Qwen3-VL in `qwen` into `out` (weights and processor; resumable state in
    `out/training/vlm_state.pt`). Stops after `until` steps (default `steps`); rerun to go on."""
    state_path = out / STATE_FILE
    if not (out / "config.json").exists():
        shutil.copytree(qwen, out, dirs_exist_ok=True)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration.from_pretrained(qwen, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(qwen)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.05)
    step = 0
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        logger.info("resumed at step %d", step)
    model.train()
    stop = min(steps, until or steps)
    while step < stop:
        rng = np.random.default_rng([seed, step])
        inputs, labels = collate(processor, [draw_example(rng) for _ in range(batch)])
        loss = model(**inputs, labels=labels).loss
        if align_batch:
            loss = loss + alignment_loss(model, processor, rng, align_batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        if step % 50 == 0:
            logger.info("step %d/%d loss %.4f", step, steps, loss.item())
        if step % save_every == 0 or step == stop:
            state_path.parent.mkdir(parents=True, exist_ok=True)
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "step": step}
            torch.save(state, state_path)
    model.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qwen", type=Path, help="the Qwen3-VL folder to start from")
    parser.add_argument("--text-layers", type=int, help="start instead from a fresh random world Qwen3-VL this deep")
    parser.add_argument("--out", type=Path, required=True, help="where the pretrained Qwen3-VL goes")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--until", type=int, help="stop after this step (resumable); rerun to go on")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--align-batch", type=int, default=0, help="scenes per step in the caption/picture alignment")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if (args.qwen is None) == (args.text_layers is None):
        parser.error("give one of --qwen (a Qwen3-VL folder) or --text-layers (a fresh random one)")
    if args.text_layers is not None and not (args.out / "config.json").exists():
        from .model import WorldModelConfig, build_world_qwen

        args.qwen = args.out / "training" / "random-start"
        build_world_qwen(args.qwen, WorldModelConfig(text_layers=args.text_layers), args.seed)
    start = args.qwen or args.out  # resuming a run that began from a random start: its own folder
    return pretrain(
        start, args.out, args.steps, args.batch, args.lr, args.seed, args.until, align_batch=args.align_batch
    )


if __name__ == "__main__":
    main()
