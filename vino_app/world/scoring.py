"""Reading scenes back from pixels, and scoring outputs against the world's ground truth.

The detector finds the background colour (from the border), reads every pixel as a mix of the background and
the palette colour whose mixing line passes nearest (`colour_coverage`), segments the pixels that are at least
half a colour into connected components, and names each component's colour, kind (from moments of its coverage,
which survive a blur: `kind_from_moments`), size and grid cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .samples import WorldSample
from .scene import BACKGROUNDS, COLOURS, DIRECTIONS, SIZES, Scene, Shape, cell_of

MIN_AREA = 20  # pixels; smaller blobs are noise
TRIANGLE_SKEW = 0.28  # half a sharp triangle's skewness of y (kind_from_moments)
SQUARE_KURTOSIS = 0.3  # half a sharp square's diagonal-minus-axis kurtosis (kind_from_moments)
RIM = 2  # pixels around a shape whose partial coverage counts towards its moments
MIN_TRAVEL = 6.0  # pixels a shape must travel to count as moving


@dataclass(frozen=True)
class Detected:
    """A component read from pixels: names as in the world, centre (x, y) and area in pixels."""

    colour: str
    kind: str
    size: str
    x: float
    y: float
    area: int

    @property
    def cell(self) -> tuple[int, int]:
        return cell_of(self.x, self.y)


def _nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    names = list(palette)
    distances = np.linalg.norm(np.array([palette[n] for n in names], float) - rgb, axis=1)
    return names[int(np.argmin(distances))]


def detect_background(image: np.ndarray) -> str:
    """The background palette colour nearest to the image's border pixels' median."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(float)
    return _nearest(np.median(border, axis=0), BACKGROUNDS)


def kind_from_moments(coverage: np.ndarray) -> str:
    """'triangle', 'square' or 'circle' from one shape's coverage `[H, W]` (0-1), by moments of its mass, which a
    blur changes little (a bounding box and its fill change a lot). A triangle pointing up has its mass low: the
    skewness of y is -0.57 for a sharp one, 0 for a circle or a square. A square's mass spreads further along its
    diagonals than along its sides: the kurtosis along a diagonal exceeds that along x and y by 0.6 for a sharp
    one, by 0 for a circle. Each threshold lies halfway."""
    y, x = np.mgrid[: coverage.shape[0], : coverage.shape[1]].astype(float)
    mass = coverage.sum()
    x, y = x - (coverage * x).sum() / mass, y - (coverage * y).sum() / mass

    def standardised(u: np.ndarray, order: int) -> float:
        variance = (coverage * u**2).sum() / mass + 1e-9  # a one-pixel line has no spread along y
        return float((coverage * u**order).sum() / mass / variance ** (order / 2))

    if standardised(y, 3) < -TRIANGLE_SKEW:
        return "triangle"
    squareness = standardised((x + y) / np.sqrt(2), 4) - (standardised(x, 4) + standardised(y, 4)) / 2
    return "square" if squareness > SQUARE_KURTOSIS else "circle"


def colour_coverage(image: np.ndarray, background: str) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel read as a mix of the background and one palette colour: the colour whose mixing line passes
    nearest to the pixel (index into `COLOURS`, `[H, W]`) and its share of the mix (0-1, `[H, W]`). A blurred
    edge of a shape stays on its own colour's line, so it is not mistaken for a shape of another colour."""
    offset = image.astype(float) - np.array(BACKGROUNDS[background], float)  # [H, W, 3]
    directions = np.array(list(COLOURS.values()), float) - np.array(BACKGROUNDS[background], float)  # [K, 3]
    share = np.clip(offset @ directions.T / (directions**2).sum(-1), 0.0, 1.0)  # [H, W, K]
    residual = np.linalg.norm(offset[..., None, :] - share[..., None] * directions, axis=-1)  # [H, W, K]
    nearest = np.argmin(residual, axis=-1)
    return nearest, np.take_along_axis(share, nearest[..., None], axis=-1)[..., 0]


def detect(image: np.ndarray) -> tuple[str, list[Detected]]:
    """Background name and the shapes of a uint8 `[H, W, 3]` image, largest first. A shape is the pixels that are
    at least half its colour (the half-way contour of a blurred edge is where the sharp edge was)."""
    background = detect_background(image)
    nearest, share = colour_coverage(image, background)
    found = []
    for c, name in enumerate(COLOURS):
        labels, count = ndimage.label((nearest == c) & (share >= 0.5))
        for index in range(1, count + 1):
            component = labels == index
            ys, xs = np.nonzero(component)
            if len(xs) < MIN_AREA:
                continue
            rim = ndimage.binary_dilation(component, iterations=RIM) & (nearest == c)
            size = "big" if max(np.ptp(xs), np.ptp(ys)) + 1 > SIZES["small"] + SIZES["big"] else "small"
            found.append(Detected(name, kind_from_moments(share * rim), size, xs.mean(), ys.mean(), len(xs)))
    return background, sorted(found, key=lambda d: -d.area)


def find(detected: list[Detected], shape: Shape) -> Detected | None:
    """The detection of `shape`'s colour nearest to it (shapes of one scene have distinct colours)."""
    same = [d for d in detected if d.colour == shape.colour]
    return min(same, key=lambda d: (d.x - shape.x) ** 2 + (d.y - shape.y) ** 2) if same else None


def shape_checks(detected: list[Detected], shape: Shape) -> dict[str, bool]:
    """colour / kind / position (grid cell) of one expected shape."""
    d = find(detected, shape)
    return {
        "colour": d is not None,
        "kind": d is not None and d.kind == shape.kind,
        "position": d is not None and d.cell == shape.cell,
    }


SHAPE_ATTRIBUTES = ("colour", "kind", "position")


def scene_checks(image: np.ndarray, scene: Scene) -> tuple[dict[str, bool], dict[str, float]]:
    """Per attribute over all shapes of `scene`, plus count and background; and, as partial credit, the share of
    its shapes whose colour / kind / position is right (`shape_colour`, ...)."""
    background, detected = detect(image)
    per_shape = [shape_checks(detected, s) for s in scene.shapes]
    checks = {key: all(c[key] for c in per_shape) for key in SHAPE_ATTRIBUTES}
    checks["count"] = len(detected) == len(scene.shapes)
    checks["background"] = background == scene.background
    rates = {f"shape_{key}": float(np.mean([c[key] for c in per_shape])) for key in SHAPE_ATTRIBUTES}
    return checks, rates


def shapes_ok(detected: list[Detected], shapes) -> bool:
    return all(all(shape_checks(detected, s).values()) for s in shapes)


def travel(frames: np.ndarray, colour: str) -> tuple[float, float] | None:
    """Displacement (dx, dy) in pixels of the `colour` shape between the first and last frame it is seen in."""
    centres = []
    for frame in frames:
        same = [d for d in detect(frame)[1] if d.colour == colour]
        if same:
            centres.append((same[0].x, same[0].y))
    if len(centres) < 2:
        return None
    return centres[-1][0] - centres[0][0], centres[-1][1] - centres[0][1]


def direction_of(displacement: tuple[float, float] | None) -> str:
    """'left' / 'right' / 'up' / 'down' by the dominant axis, 'still' below `MIN_TRAVEL`, 'lost' without one."""
    if displacement is None:
        return "lost"
    dx, dy = displacement
    if max(abs(dx), abs(dy)) < MIN_TRAVEL:
        return "still"
    best = max(DIRECTIONS, key=lambda d: DIRECTIONS[d][0] * dx + DIRECTIONS[d][1] * dy)
    return best


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(float) - b.astype(float)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


# ---------------------------------------------------------------------------------------------- per task


def score_image(output: np.ndarray, sample: WorldSample) -> dict[str, float]:
    """Text-to-image: colour, kind, position, count; `correct` = all four; `background` and the per-shape rates
    (`scene_checks`) are reported beside them.
    Edits: `target` (the changed or added shapes are right and removed ones are gone), `kept` (the other shapes and
    the background are unchanged), `correct` = both and the count."""
    image, scene = output[0], sample.scenes[0]
    if sample.task == "t2i":
        checks, rates = scene_checks(image, scene)
        background = checks.pop("background")
        return {**checks, "correct": all(checks.values()), "background": background, **rates}
    background, detected = detect(image)
    changed = [scene.shapes[i] for i in sample.edited]
    others = [s for i, s in enumerate(scene.shapes) if i not in sample.edited]
    removed_gone = all(find(detected, s) is None or find(detected, s).cell != s.cell for s in sample.removed)
    target = shapes_ok(detected, changed) and removed_gone and (background == scene.background or not others)
    kept = shapes_ok(detected, others) and background == scene.background
    count = len(detected) == len(scene.shapes)
    return {"target": target, "kept": kept, "count": count, "correct": target and kept and count}


def score_video(output: np.ndarray, sample: WorldSample) -> dict[str, float]:
    """Videos: `motion` (the moving shape goes the right way; an appearing shape is absent first and present at
    the end; a changing shape ends in the new colour), `content` (the last frame shows the expected scene's colours
    and kinds), for i2v `first_frame` (the first frame shows Image 1's scene) and its PSNR in dB."""
    motion, first, last = sample.motion, sample.scenes[0], sample.scenes[-1]
    mover = last.shapes[motion.index]
    if motion.kind == "move":
        ok = direction_of(travel(output, mover.colour)) == motion.direction
    elif motion.kind == "appear":
        ok = find(detect(output[0])[1], mover) is None and find(detect(output[-1])[1], mover) is not None
    else:
        before = first.shapes[motion.index]
        ok = find(detect(output[0])[1], before) is not None and find(detect(output[-1])[1], mover) is not None
    _, detected = detect(output[-1])
    content = all(shape_checks(detected, s)["colour"] and shape_checks(detected, s)["kind"] for s in last.shapes)
    scores = {"motion": ok, "content": content, "correct": ok and content}
    if sample.task == "i2v":
        scores["first_frame"] = all(scene_checks(output[0], first)[0].values())
        scores["first_psnr"] = psnr(output[0], sample.images[0])
    return scores


def score(output: np.ndarray, sample: WorldSample) -> dict[str, float]:
    """Scores of one output `[F, H, W, 3]` for its sample (booleans as 0/1, PSNR in dB)."""
    scores = score_image(output, sample) if output.shape[0] == 1 else score_video(output, sample)
    return {k: float(v) for k, v in scores.items()}
