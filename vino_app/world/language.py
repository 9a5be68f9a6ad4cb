"""The world's words: long and short captions of scenes and videos, and the phrases instructions are built from."""

from __future__ import annotations

import numpy as np

from .scene import Motion, Scene, Shape, cell_name

DIRECTION_PHRASES = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}


def place_phrase(shape: Shape) -> str:
    """'at the top left', 'on the left', 'in the center', ... for the shape's grid cell."""
    name = cell_name(shape.cell)
    if name == "center":
        return "in the center"
    return f"on the {name}" if name in ("left", "right") else f"at the {name}"


def noun(shape: Shape, size: bool = False) -> str:
    return f"{shape.size + ' ' if size else ''}{shape.colour} {shape.kind}"


def join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def long_caption(scene: Scene) -> str:
    """Every attribute: 'A big red circle at the top left and a small blue square on the right, on a white
    background.'"""
    parts = [f"a {noun(s, size=True)} {place_phrase(s)}" for s in scene.shapes]
    text = (
        join(parts) + f", on a {scene.background} background." if parts else f"an empty {scene.background} background."
    )
    return text[0].upper() + text[1:]


def relation(a: Shape, b: Shape) -> str | None:
    """'on the left of' / 'above' / ... when a and b share a row or a column, else None."""
    (ra, ca), (rb, cb) = a.cell, b.cell
    if ra == rb:
        return "on the left of" if ca < cb else "on the right of"
    if ca == cb:
        return "above" if ra < rb else "below"
    return None


def short_caption(scene: Scene) -> str:
    """Colours and kinds only, with a spatial relation for two shapes in one row or column:
    'a red circle on the left of a blue square'."""
    shapes = scene.shapes
    if len(shapes) == 2 and (rel := relation(*shapes)):
        return f"a {noun(shapes[0])} {rel} a {noun(shapes[1])}"
    return join([f"a {noun(s)}" for s in shapes])


def motion_phrase(shape: Shape, motion: Motion, definite: bool = True) -> str:
    """'the green triangle moves to the right', 'a red circle appears at the top', 'the square turns blue'."""
    the = "the" if definite else "a"
    if motion.kind == "move":
        return f"{the} {noun(shape)} moves {DIRECTION_PHRASES[motion.direction]}"
    if motion.kind == "appear":
        return f"a {noun(shape)} appears {place_phrase(shape)}"
    return f"{the} {noun(shape)} turns {motion.colour}"


def video_caption(scene: Scene, motion: Motion, long: bool) -> str:
    """Long: background, every shape with size and place, what happens. Short: what happens."""
    mover = scene.shapes[motion.index]
    event = motion_phrase(mover, motion, definite=False)
    if not long:
        return event
    others = [s for i, s in enumerate(scene.shapes) if i != motion.index]
    start = "" if motion.kind == "appear" else f" {place_phrase(mover)}"
    event = motion_phrase(mover, motion, definite=False).replace(noun(mover), noun(mover, size=True) + start, 1)
    text = f"On a {scene.background} background, {event}"
    if others:
        text += ", while " + join([f"a {noun(s, size=True)} stays {place_phrase(s)}" for s in others])
    return text + "."


def pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]
