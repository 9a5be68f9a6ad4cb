"""Paired training and evaluation data for every VINO task, drawn from the world.

A `WorldSample` is one request (instruction + reference media) with its ground truth: the target frames and the
scene(s) they show, which the scorer compares the model's output with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import numpy as np

from ..tasks import TASKS
from .language import DIRECTION_PHRASES, long_caption, noun, pick, place_phrase, short_caption, video_caption
from .scene import (
    BACKGROUNDS,
    COLOURS,
    KINDS,
    Motion,
    Scene,
    animate,
    free_cells,
    random_video,
    random_scene,
    random_shape,
    render,
    render_video,
)

# Pipeline task label and whether the last image is the base image, per world task: the nine-task table's, and
# the proxy tasks of stages 1 and 3 (reconstruct, select) run as plain image edits.
PIPELINE_TASK = {
    **{name: (task.label, task.base_image) for name, task in TASKS.items() if name != "clone"},  # no clone data
    "reconstruct": ("ti2i", False),
    "select": ("ti2i", False),
}


@dataclass
class WorldSample:
    """One request and its truth.

    images: uint8 `[64, 64, 3]` references ("Image 1".."Image n"); video: uint8 `[9, 64, 64, 3]` or None;
    target: uint8 `[F, 64, 64, 3]` (F = 1 or 9); scenes: the scene of each target frame; motion: what happens in a
    target video; edited: indices (into the target scene) of the shapes the instruction changes or adds;
    removed: shapes the instruction removes.
    """

    task: str
    prompt: str
    images: list[np.ndarray]
    video: np.ndarray | None
    target: np.ndarray
    scenes: list[Scene]
    motion: Motion | None = None
    edited: tuple[int, ...] = ()
    removed: tuple = ()
    source: Scene | None = None

    @property
    def pipeline_task(self) -> str:
        return PIPELINE_TASK[self.task][0]

    @property
    def base_image(self) -> bool:
        return PIPELINE_TASK[self.task][1]

    @property
    def num_frames(self) -> int:
        return int(self.target.shape[0])


def _count(rng: np.random.Generator, weights=(0.45, 0.35, 0.2)) -> int:
    return int(rng.choice([1, 2, 3], p=weights))


def _still(task: str, prompt: str, scene: Scene, images=(), **kw) -> WorldSample:
    return WorldSample(task, prompt, list(images), None, render(scene)[None], [scene], **kw)


def _video(task: str, prompt: str, scene: Scene, motion: Motion, images=(), video=None, **kw) -> WorldSample:
    scenes = animate(scene, motion)
    return WorldSample(task, prompt, list(images), video, render_video(scenes), scenes, motion=motion, **kw)


# ---------------------------------------------------------------------------------------------- text only


def make_t2i(rng: np.random.Generator, long: bool, count: int | None = None) -> WorldSample:
    """A scene of `count` shapes (1-3 at random when None) and its caption."""
    scene = random_scene(rng, count or _count(rng))
    prompt = long_caption(scene) if long else short_caption(scene)
    return _still("t2i", prompt, scene, edited=tuple(range(len(scene.shapes))))


def make_t2v(rng: np.random.Generator, long: bool) -> WorldSample:
    scene, motion = random_video(rng)
    return _video("t2v", video_caption(scene, motion, long), scene, motion)


# ---------------------------------------------------------------------------------------------- image editing


def edit_scene(rng: np.random.Generator, scene: Scene, where: str) -> tuple[Scene, str, tuple[int, ...], tuple]:
    """One edit of `scene`: (edited scene, instruction naming `where` ("Image 1", "Video 1"), edited indices,
    removed shapes). Shapes are named by kind (kinds are distinct in world scenes)."""
    shapes = list(scene.shapes)
    i = int(rng.integers(len(shapes)))
    target = shapes[i]
    options = (
        ["recolour", "reshape", "background"]
        + (["remove"] if len(shapes) > 1 else [])
        + (["add"] if len(shapes) < 3 else [])
    )
    op = pick(rng, options)
    if op == "recolour":
        colour = pick(rng, [c for c in COLOURS if c not in {s.colour for s in shapes}])
        shapes[i] = replace(target, colour=colour)
        return scene.with_shapes(shapes), f"Make the {target.kind} in {where} {colour}.", (i,), ()
    if op == "reshape":
        kind = pick(
            rng, [k for k in KINDS if k not in {s.kind for s in shapes}] or [k for k in KINDS if k != target.kind]
        )
        shapes[i] = replace(target, kind=kind)
        return scene.with_shapes(shapes), f"Turn the {target.kind} in {where} into a {kind}.", (i,), ()
    if op == "background":
        background = pick(rng, [b for b in BACKGROUNDS if b != scene.background])
        return replace(scene, background=background), f"Make the background of {where} {background}.", (), ()
    if op == "remove":
        shapes.pop(i)
        return scene.with_shapes(shapes), f"Remove the {target.kind} from {where}.", (), (target,)
    cell = free_cells(scene)[int(rng.integers(len(free_cells(scene))))]
    kind = pick(rng, [k for k in KINDS if k not in {s.kind for s in shapes}])
    colour = pick(rng, [c for c in COLOURS if c not in {s.colour for s in shapes}])
    new = random_shape(rng, cell, kind, colour)
    shapes.append(new)
    return (
        scene.with_shapes(shapes),
        f"Add a {noun(new, size=True)} {place_phrase(new)} of {where}.",
        (len(shapes) - 1,),
        (),
    )


def make_ti2i(rng: np.random.Generator, long: bool = False) -> WorldSample:
    source = random_scene(rng, _count(rng))
    scene, prompt, edited, removed = edit_scene(rng, source, "Image 1")
    return _still("ti2i", prompt, scene, [render(source)], edited=edited, removed=removed, source=source)


def make_ti2i_base(rng: np.random.Generator, long: bool = False) -> WorldSample:
    """Image 1: a reference shape; Image 2 (the base): a one-shape scene that takes its colour or its shape."""
    reference = random_scene(rng, 1)
    base = random_scene(rng, 1)
    while base.shapes[0].colour == reference.shapes[0].colour or base.shapes[0].kind == reference.shapes[0].kind:
        base = random_scene(rng, 1)
    ref, old = reference.shapes[0], base.shapes[0]
    if rng.random() < 0.5:
        new, prompt = replace(old, colour=ref.colour), "Give the shape in Image 2 the colour of the shape in Image 1."
    else:
        new, prompt = (
            replace(old, kind=ref.kind, colour=ref.colour),
            "Replace the shape in Image 2 with the shape in Image 1.",
        )
    scene = base.with_shapes([new])
    return _still("ti2i_base", prompt, scene, [render(reference), render(base)], edited=(0,), source=base)


def make_reconstruct(rng: np.random.Generator, long: bool = False) -> WorldSample:
    """Proxy task of stage 1: the output is Image 1."""
    scene = random_scene(rng, _count(rng))
    return _still("reconstruct", "Reconstruct Image 1.", scene, [render(scene)], source=scene)


def make_select(rng: np.random.Generator, long: bool = False) -> WorldSample:
    """Proxy task of stage 3 (image selection): the output is the named one of two or three images."""
    scenes = [random_scene(rng, _count(rng)) for _ in range(int(rng.integers(2, 4)))]
    k = int(rng.integers(len(scenes)))
    return _still("select", f"Show Image {k + 1} again.", scenes[k], [render(s) for s in scenes], source=scenes[k])


# ---------------------------------------------------------------------------------------------- video outputs


def make_i2v(rng: np.random.Generator, long: bool = False) -> WorldSample:
    scene, motion = random_video(rng, kinds=("move", "move", "move", "change"))
    mover = scene.shapes[0]
    event = video_caption(scene, motion, long=False).replace(f"a {noun(mover)}", f"the {mover.kind}", 1)
    return _video("i2v", f"Image 1 is the first frame; {event}.", scene, motion, [render(scene)], source=scene)


def make_ti2v(rng: np.random.Generator, long: bool = False) -> WorldSample:
    """Two one-shape images; the video shows both shapes where they were, on a named background; one moves."""
    scene, motion = random_video(rng, (0.0, 1.0), index=None, kinds=("move",))
    refs = [render(random_scene(rng, 0).with_shapes([s])) for s in scene.shapes]
    k, still = motion.index, 1 - motion.index
    prompt = (
        f"On a {scene.background} background, the {scene.shapes[k].kind} from Image {k + 1} moves "
        f"{DIRECTION_PHRASES[motion.direction]} and the {scene.shapes[still].kind} from Image {still + 1} stays still."
    )
    return _video("ti2v", prompt, scene, motion, refs)


def make_tv2v(rng: np.random.Generator, long: bool = False) -> WorldSample:
    source, motion = random_video(rng, kinds=("move",))
    scene, prompt, edited, removed = edit_scene(rng, source, "Video 1")
    while "Remove" in prompt and removed[0] == source.shapes[0] or "Add" in prompt:
        scene, prompt, edited, removed = edit_scene(rng, source, "Video 1")
    video = render_video(animate(source, motion))
    return _video("tv2v", prompt, scene, motion, video=video, edited=edited, removed=removed, source=source)


def make_tiv2v(rng: np.random.Generator, long: bool = False) -> WorldSample:
    """Replace the moving shape of Video 1 with the shape of Image 1 (its kind and colour, the video's size)."""
    source, motion = random_video(rng, kinds=("move",))
    old = source.shapes[0]
    reference = random_scene(rng, 1)
    while reference.shapes[0].kind == old.kind or reference.shapes[0].colour in {s.colour for s in source.shapes}:
        reference = random_scene(rng, 1)
    ref = reference.shapes[0]
    scene = source.with_shapes([replace(old, kind=ref.kind, colour=ref.colour), *source.shapes[1:]])
    prompt = f"Replace the {old.kind} in Video 1 with the shape in Image 1."
    video = render_video(animate(source, motion))
    return _video("tiv2v", prompt, scene, motion, [render(reference)], video, edited=(0,), source=source)


MAKERS: dict[str, Callable[[np.random.Generator, bool], WorldSample]] = {
    "t2i": make_t2i,
    "t2i_single": partial(make_t2i, count=1),  # a t2i sample of one shape (the single-shape curriculum)
    "t2v": make_t2v,
    "ti2i": make_ti2i,
    "ti2i_base": make_ti2i_base,
    "i2v": make_i2v,
    "ti2v": make_ti2v,
    "tv2v": make_tv2v,
    "tiv2v": make_tiv2v,
    "reconstruct": make_reconstruct,
    "select": make_select,
}
EVALUATED_TASKS = ("t2i", "t2v", "ti2i", "ti2i_base", "i2v", "ti2v", "tv2v", "tiv2v")
HELD_OUT_PERCENT = 10


def is_held_out(sample: WorldSample) -> bool:
    """Whether the sample belongs to the evaluation split: a hash of its task, the long captions of its source and
    target scenes and, for edits, its instruction (so a held-out text-to-image scene is never trained on, in any
    wording or position jitter)."""
    scenes = [s for s in (sample.source, sample.scenes[0], sample.scenes[-1]) if s is not None]
    instruction = "" if sample.task in ("t2i", "t2v") else sample.prompt
    key = "|".join([sample.task, instruction, *(long_caption(s) for s in scenes)])
    return int(hashlib.md5(key.encode()).hexdigest(), 16) % 100 < HELD_OUT_PERCENT


def make_sample(rng: np.random.Generator, task: str, long: bool | None = None, split: str = "train") -> WorldSample:
    """A sample of `task` from the 'train' or the held-out 'eval' split; captions long or short at random unless
    `long` is given."""
    while True:
        sample = MAKERS[task](rng, bool(rng.random() < 0.5) if long is None else long)
        if is_held_out(sample) == (split == "eval"):
            return sample
