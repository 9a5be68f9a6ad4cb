"""The procedural world: a background colour and one to three flat shapes on a 64x64 canvas, and 9-frame videos.

Everything the captions and the pixel scorer need is here: the vocabulary (colours, kinds, sizes, a 3x3 grid
of places), the scene description and the renderer. Pixel coordinates are (x, y) with y down.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 64  # pixels, square
VIDEO_FRAMES = 9  # 4k+1: two latent frames after the first with 4x temporal compression
STEP = 3  # pixels a moving shape travels per frame

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
}
KINDS = ("circle", "square", "triangle")
SIZES = {"small": 5, "big": 8}  # half extent in pixels
CELL_CENTRES = (12, 32, 52)  # pixel centres of the 3x3 grid's columns and rows
CELL_NAMES = (
    ("top left", "top", "top right"),
    ("left", "center", "right"),
    ("bottom left", "bottom", "bottom right"),
)
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


def cell_of(x: float, y: float) -> tuple[int, int]:
    """Grid cell (row, col) holding pixel (x, y): boundaries halfway between the cell centres."""
    bounds = [(CELL_CENTRES[0] + CELL_CENTRES[1]) / 2, (CELL_CENTRES[1] + CELL_CENTRES[2]) / 2]
    return int(np.searchsorted(bounds, y)), int(np.searchsorted(bounds, x))


def cell_name(cell: tuple[int, int]) -> str:
    return CELL_NAMES[cell[0]][cell[1]]


@dataclass(frozen=True)
class Shape:
    """One shape: kind, colour and size names and its centre in pixels."""

    kind: str
    colour: str
    size: str
    x: float
    y: float

    @property
    def cell(self) -> tuple[int, int]:
        return cell_of(self.x, self.y)

    def moved(self, dx: float, dy: float) -> "Shape":
        return replace(self, x=self.x + dx, y=self.y + dy)


@dataclass(frozen=True)
class Scene:
    """A background colour name and the shapes, drawn in order."""

    background: str
    shapes: tuple[Shape, ...] = field(default_factory=tuple)

    def with_shapes(self, shapes) -> "Scene":
        return replace(self, shapes=tuple(shapes))


def draw_shape(draw: ImageDraw.ImageDraw, shape: Shape) -> None:
    r, fill = SIZES[shape.size], COLOURS[shape.colour]
    box = (shape.x - r, shape.y - r, shape.x + r - 1, shape.y + r - 1)
    if shape.kind == "circle":
        draw.ellipse(box, fill=fill)
    elif shape.kind == "square":
        draw.rectangle(box, fill=fill)
    else:  # an isosceles triangle pointing up, as wide as it is tall
        draw.polygon(
            [(shape.x, shape.y - r), (shape.x - r, shape.y + r - 1), (shape.x + r - 1, shape.y + r - 1)], fill=fill
        )


def render(scene: Scene) -> np.ndarray:
    """uint8 `[64, 64, 3]`."""
    image = Image.new("RGB", (CANVAS, CANVAS), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    for shape in scene.shapes:
        draw_shape(draw, shape)
    return np.asarray(image)


def render_video(scenes: list[Scene]) -> np.ndarray:
    """uint8 `[F, 64, 64, 3]`, one scene per frame."""
    return np.stack([render(s) for s in scenes])


# ---------------------------------------------------------------------------------------------- random scenes


def random_shape(rng: np.random.Generator, cell: tuple[int, int], kind=None, colour=None, size=None) -> Shape:
    """A shape centred in `cell` (jitter of one pixel), with the given or random attributes."""
    jitter = rng.integers(-1, 2, size=2)
    return Shape(
        kind or str(rng.choice(KINDS)),
        colour or str(rng.choice(list(COLOURS))),
        size or str(rng.choice(list(SIZES))),
        float(CELL_CENTRES[cell[1]] + jitter[0]),
        float(CELL_CENTRES[cell[0]] + jitter[1]),
    )


def random_scene(
    rng: np.random.Generator, count: int, distinct_kinds: bool = True, distinct_colours: bool = True
) -> Scene:
    """`count` shapes in distinct cells; kinds and colours distinct when asked (so words can name each shape)."""
    cells = rng.choice(9, size=count, replace=False)
    kinds = rng.choice(KINDS, size=count, replace=not distinct_kinds)
    colours = rng.choice(list(COLOURS), size=count, replace=not distinct_colours)
    shapes = [random_shape(rng, divmod(int(c), 3), str(k), str(col)) for c, k, col in zip(cells, kinds, colours)]
    return Scene(str(rng.choice(list(BACKGROUNDS))), tuple(shapes))


def free_cells(scene: Scene) -> list[tuple[int, int]]:
    taken = {s.cell for s in scene.shapes}
    return [divmod(c, 3) for c in range(9) if divmod(c, 3) not in taken]


# ---------------------------------------------------------------------------------------------- motion


@dataclass(frozen=True)
class Motion:
    """What happens to shape `index` over the video: 'move' (in `direction`), 'appear' (from the middle frame
    on) or 'change' (to colour `colour` from the middle frame on)."""

    kind: str
    index: int
    direction: str | None = None
    colour: str | None = None


def can_move(scene: Scene, index: int, direction: str) -> bool:
    """Whether shape `index` stays inside the canvas and clear of the other shapes over the whole video."""
    shape = scene.shapes[index]
    dx, dy = DIRECTIONS[direction]
    r = SIZES[shape.size]
    for t in range(VIDEO_FRAMES):
        x, y = shape.x + dx * STEP * t, shape.y + dy * STEP * t
        if not (r <= x <= CANVAS - r and r <= y <= CANVAS - r):
            return False
        for j, other in enumerate(scene.shapes):
            gap = r + SIZES[other.size] + 2
            if j != index and abs(other.x - x) < gap and abs(other.y - y) < gap:
                return False
    return True


def animate(scene: Scene, motion: Motion) -> list[Scene]:
    """The scene at each of the `VIDEO_FRAMES` frames."""
    frames = []
    for t in range(VIDEO_FRAMES):
        shapes = list(scene.shapes)
        target = shapes[motion.index]
        if motion.kind == "move":
            dx, dy = DIRECTIONS[motion.direction]
            shapes[motion.index] = target.moved(dx * STEP * t, dy * STEP * t)
        elif motion.kind == "appear" and t < VIDEO_FRAMES // 2:
            shapes.pop(motion.index)
        elif motion.kind == "change" and t >= VIDEO_FRAMES // 2:
            shapes[motion.index] = replace(target, colour=motion.colour)
        frames.append(scene.with_shapes(shapes))
    return frames


def random_motion(
    rng: np.random.Generator, scene: Scene, index: int, kinds=("move", "move", "move", "appear", "change")
) -> Motion | None:
    """A motion of shape `index`; a move keeps it inside the canvas and clear of the others (None if it cannot)."""
    kind = str(rng.choice(kinds))
    shape = scene.shapes[index]
    if kind == "move":
        options = [d for d in DIRECTIONS if can_move(scene, index, d)]
        return Motion("move", index, direction=str(rng.choice(options))) if options else None
    if kind == "change":
        return Motion("change", index, colour=str(rng.choice([c for c in COLOURS if c != shape.colour])))
    return Motion("appear", index)


def random_video(
    rng: np.random.Generator,
    count_weights=(0.6, 0.4),
    index: int | None = 0,
    kinds=("move", "move", "move", "appear", "change"),
) -> tuple[Scene, Motion]:
    """A scene of one or two shapes and a motion of shape `index` (random when None) that fits it."""
    while True:
        scene = random_scene(rng, int(rng.choice([1, 2], p=count_weights)))
        motion = random_motion(rng, scene, int(rng.integers(len(scene.shapes))) if index is None else index, kinds)
        if motion is not None:
            return scene, motion
