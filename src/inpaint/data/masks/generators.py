"""Seeded random hole generators: PConv-Keras-style shapes, LaMa-style brush strokes + boxes, object-sized boxes and
blobs, and mixtures.

Every generator draws *holes* on a ``uint8`` canvas (255 = hole) with OpenCV primitives and returns the library's
mask convention: float32 (H, W), **1 = valid pixel, 0 = hole**. All randomness comes from the NumPy generator passed
in, so the same generator state gives the same mask on any worker or rank (see :mod:`inpaint.data._rng`).

Hole-ratio constraint: primitives are added one at a time; a primitive that would push the hole ratio above the
upper bound is rejected and another one is drawn, and drawing continues past the planned count until the ratio
exceeds the lower bound. Bounds follow the NVIDIA bins: the ratio must satisfy ``low < ratio <= high`` (``low = 0``
allows masks without holes).
"""

from __future__ import annotations

import copy
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

log = logging.getLogger(__name__)

_EPS = 1e-9  # same tolerance as inpaint.data.masks.ratio.hole_ratio_bin


def holes_to_mask(holes: np.ndarray) -> np.ndarray:
    """(H, W) hole map (nonzero = hole) -> (H, W) float32 mask, 1 = valid, 0 = hole."""
    return (holes == 0).astype(np.float32)


def mask_hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a (H, W) mask in the library convention (1 = valid)."""
    return float(1.0 - np.count_nonzero(mask > 0.5) / mask.size)


def resize_mask_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a (H, W) binary mask with nearest-neighbour interpolation; the result stays exactly binary.

    Bilinear resizing would create fractional values at hole borders (a pitfall of some reimplementations).
    """
    if mask.shape == (height, width):
        return mask
    out = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)
    return (out > 0.5).astype(mask.dtype if mask.dtype != bool else np.float32)


class MaskSampler(ABC):
    """Something that turns a NumPy generator into a mask: the interface of every random mask source."""

    min_hole_ratio: float = 0.0
    max_hole_ratio: float = 1.0

    @abstractmethod
    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """Draw one mask.

        Args:
            rng: the only source of randomness.
            height, width: output size in pixels.

        Returns:
            (height, width) float32, 1 = valid, 0 = hole.
        """

    def with_hole_ratio_range(self, low: float, high: float) -> MaskSampler:
        """A copy of this sampler whose masks satisfy ``low < hole_ratio <= high``."""
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"hole ratio range must satisfy 0 <= low < high <= 1, got ({low}, {high})")
        other = copy.copy(self)
        other.min_hole_ratio = float(low)
        other.max_hole_ratio = float(high)
        return other

    def _above_low(self, ratio: float) -> bool:
        return ratio > self.min_hole_ratio + _EPS if self.min_hole_ratio > 0 else True

    def _in_range(self, ratio: float) -> bool:
        return self._above_low(ratio) and ratio <= self.max_hole_ratio + _EPS


class PrimitiveMaskGenerator(MaskSampler):
    """Base class for generators that draw a random number of primitives and honour a hole-ratio range."""

    #: hard cap on primitives per mask (accepted + rejected), so a range that cannot be met ends in a warning
    max_draws: int = 4000

    @abstractmethod
    def _plan(self, rng: np.random.Generator) -> list[str]:
        """The primitive kinds to draw for one mask, in order (e.g. ``["stroke", "stroke", "box"]``)."""

    @abstractmethod
    def _extra_kind(self, rng: np.random.Generator) -> str:
        """Kind of an extra primitive, drawn when the plan is exhausted below the lower hole-ratio bound."""

    @abstractmethod
    def _draw(self, canvas: np.ndarray, kind: str, rng: np.random.Generator) -> None:
        """Draw one primitive of ``kind`` as 255 onto ``canvas`` (H, W) uint8, in place."""

    def draw_holes(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """(H, W) uint8 hole map, 255 = hole, respecting the hole-ratio range when possible."""
        if height < 1 or width < 1:
            raise ValueError(f"mask size must be positive, got {height}x{width}")
        canvas = np.zeros((height, width), np.uint8)
        n_pix = float(height * width)
        plan = self._plan(rng)
        holes = 0
        for draw in range(self.max_draws):
            ratio = holes / n_pix
            if draw >= len(plan) and self._above_low(ratio):  # plan done and the lower bound met
                break
            kind = plan[draw] if draw < len(plan) else self._extra_kind(rng)
            trial = canvas.copy()
            self._draw(trial, kind, rng)
            trial_holes = int(np.count_nonzero(trial))
            if trial_holes / n_pix > self.max_hole_ratio + _EPS:
                continue  # rejected: would overshoot the upper bound
            canvas, holes = trial, trial_holes
        ratio = holes / n_pix
        if not self._in_range(ratio):
            log.warning(
                "%s could not reach hole ratio range (%.3f, %.3f] at %dx%d within %d primitives; "
                "returning a mask with ratio %.4f",
                type(self).__name__,
                self.min_hole_ratio,
                self.max_hole_ratio,
                height,
                width,
                self.max_draws,
                ratio,
            )
        return canvas

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """Draw one mask: (height, width) float32, 1 = valid, 0 = hole."""
        return holes_to_mask(self.draw_holes(rng, height, width))


def _randint(rng: np.random.Generator, low: int, high: int) -> int:
    """Uniform integer in the closed range [low, high]."""
    return int(rng.integers(low, high + 1)) if high > low else int(low)


@dataclass
class ShapesMaskGenerator(PrimitiveMaskGenerator):
    """PConv-Keras-style masks: random lines, filled circles and ellipse arcs.

    Counts are drawn uniformly from the closed ranges; line/arc thickness is uniform in
    ``[min_thickness, max(min_thickness, thickness_frac * (W + H))]`` pixels, circle radius likewise with
    ``radius_frac``, ellipse semi-axes up to ``axis_frac`` of the image side.
    """

    num_lines: tuple[int, int] = (1, 20)
    num_circles: tuple[int, int] = (1, 20)
    num_ellipses: tuple[int, int] = (1, 20)
    min_thickness: int = 3
    thickness_frac: float = 0.03
    radius_frac: float = 0.03
    axis_frac: float = 0.5
    min_hole_ratio: float = 0.0
    max_hole_ratio: float = 1.0

    def _plan(self, rng: np.random.Generator) -> list[str]:
        kinds = (
            ["line"] * _randint(rng, *self.num_lines)
            + ["circle"] * _randint(rng, *self.num_circles)
            + ["ellipse"] * _randint(rng, *self.num_ellipses)
        )
        rng.shuffle(kinds)
        return kinds

    def _extra_kind(self, rng: np.random.Generator) -> str:
        return ("line", "circle", "ellipse")[int(rng.integers(3))]

    def _draw(self, canvas: np.ndarray, kind: str, rng: np.random.Generator) -> None:
        h, w = canvas.shape
        max_t = max(self.min_thickness, int(self.thickness_frac * (w + h)))
        thickness = _randint(rng, self.min_thickness, max_t)
        if kind == "line":
            p1 = (int(rng.integers(w)), int(rng.integers(h)))
            p2 = (int(rng.integers(w)), int(rng.integers(h)))
            cv2.line(canvas, p1, p2, 255, thickness)
        elif kind == "circle":
            max_r = max(self.min_thickness, int(self.radius_frac * (w + h)))
            center = (int(rng.integers(w)), int(rng.integers(h)))
            cv2.circle(canvas, center, _randint(rng, self.min_thickness, max_r), 255, -1)
        elif kind == "ellipse":
            center = (int(rng.integers(w)), int(rng.integers(h)))
            axes = (
                _randint(rng, 1, max(1, int(self.axis_frac * w))),
                _randint(rng, 1, max(1, int(self.axis_frac * h))),
            )
            angle = float(rng.uniform(0, 180))
            start = float(rng.uniform(0, 360))
            span = float(rng.uniform(30, 360))
            cv2.ellipse(canvas, center, axes, angle, start, start + span, 255, thickness)
        else:  # pragma: no cover - plan only produces the kinds above
            raise ValueError(f"unknown primitive {kind!r}")


@dataclass
class StrokesMaskGenerator(PrimitiveMaskGenerator):
    """LaMa-style free-form brush strokes plus optional rectangles.

    A stroke is a polyline of 1..``max_vertices`` segments; each segment turns by up to ``max_angle`` radians
    from the previous direction, has a length uniform in ``[min_length, max_length]`` and the whole stroke a width
    uniform in ``[min_width, max_width]`` (round joints). With probability ``box_prob`` a mask also gets
    ``num_boxes`` rectangles with sides uniform in ``box_size``. Pixel sizes are given at ``reference_size`` (the
    shorter image side they were tuned for) and scaled to the requested size, so a 64² mask looks like a 256² one.
    """

    num_strokes: tuple[int, int] = (4, 5)
    min_width: int = 5
    max_width: int = 50
    min_length: int = 10
    max_length: int = 100
    max_vertices: int = 5
    max_angle: float = math.pi / 2
    box_prob: float = 0.0
    num_boxes: tuple[int, int] = (1, 3)
    box_size: tuple[int, int] = (10, 50)
    reference_size: int = 256
    min_hole_ratio: float = 0.0
    max_hole_ratio: float = 1.0

    def _px(self, value: float, canvas: np.ndarray) -> int:
        """A size in pixels at ``reference_size``, scaled to the canvas."""
        return max(1, round(value * min(canvas.shape) / float(self.reference_size)))

    def _plan(self, rng: np.random.Generator) -> list[str]:
        kinds = ["stroke"] * _randint(rng, *self.num_strokes)
        if self.box_prob > 0 and rng.random() < self.box_prob:
            kinds += ["box"] * _randint(rng, *self.num_boxes)
        rng.shuffle(kinds)
        return kinds

    def _extra_kind(self, rng: np.random.Generator) -> str:
        return "stroke"

    def _draw(self, canvas: np.ndarray, kind: str, rng: np.random.Generator) -> None:
        h, w = canvas.shape
        if kind == "box":
            lo, hi = self._px(self.box_size[0], canvas), self._px(self.box_size[1], canvas)
            bw, bh = min(_randint(rng, lo, hi), w), min(_randint(rng, lo, hi), h)
            x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
            cv2.rectangle(canvas, (x0, y0), (x0 + bw - 1, y0 + bh - 1), 255, -1)
            return
        width = _randint(rng, self._px(self.min_width, canvas), self._px(self.max_width, canvas))
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        direction = float(rng.uniform(0, 2 * math.pi))
        points = [(round(x), round(y))]
        for _ in range(_randint(rng, 1, self.max_vertices)):
            direction += float(rng.uniform(-self.max_angle, self.max_angle))
            length = float(rng.uniform(self._px(self.min_length, canvas), self._px(self.max_length, canvas)))
            # Plain min/max: np.clip on Python scalars costs ~10x more, and this runs per vertex of every stroke.
            x = min(max(x + length * math.cos(direction), 0.0), float(w - 1))
            y = min(max(y + length * math.sin(direction), 0.0), float(h - 1))
            points.append((round(x), round(y)))
        cv2.polylines(canvas, [np.asarray(points, np.int32)], False, 255, width)
        for p in points:  # round caps and joints, like a brush
            cv2.circle(canvas, p, width // 2, 255, -1)


@dataclass
class ObjectMaskGenerator(PrimitiveMaskGenerator):
    """Object-sized holes: what remains when a person, a car or a sign is cut out of a photo.

    Each mask has ``num_objects`` holes; each is a filled axis-aligned box (probability ``box_prob``) or a blob (a
    smooth star-shaped outline: radius ``r(θ) = 1 + Σ_k a_k cos(kθ + φ_k)`` for k = 2..4, randomly rotated). An
    object's width and height are each a uniform fraction ``size`` of the image's shorter side, so one object covers
    about 1 % (``size`` 0.1) to 60 % (0.77) of a square image.
    """

    num_objects: tuple[int, int] = (1, 1)
    size: tuple[float, float] = (0.1, 0.77)
    box_prob: float = 0.5
    min_hole_ratio: float = 0.0
    max_hole_ratio: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.size[0] <= self.size[1] <= 1.0:
            raise ValueError(f"object size must be fractions 0 < low <= high <= 1, got {self.size}")
        if not 0.0 <= self.box_prob <= 1.0:
            raise ValueError(f"box_prob must be in [0, 1], got {self.box_prob}")

    def _plan(self, rng: np.random.Generator) -> list[str]:
        return [self._extra_kind(rng) for _ in range(_randint(rng, *self.num_objects))]

    def _extra_kind(self, rng: np.random.Generator) -> str:
        return "box" if rng.random() < self.box_prob else "blob"

    def _draw(self, canvas: np.ndarray, kind: str, rng: np.random.Generator) -> None:
        h, w = canvas.shape
        side = min(h, w)
        ow, oh = (max(1, round(float(rng.uniform(*self.size)) * side)) for _ in range(2))
        ow, oh = min(ow, w), min(oh, h)
        cx, cy = float(rng.uniform(ow / 2, w - ow / 2)), float(rng.uniform(oh / 2, h - oh / 2))
        if kind == "box":
            x0, y0 = round(cx - ow / 2), round(cy - oh / 2)
            cv2.rectangle(canvas, (x0, y0), (x0 + ow - 1, y0 + oh - 1), 255, -1)
            return
        theta = np.linspace(0.0, 2 * math.pi, 64, endpoint=False)
        radius = np.ones_like(theta)
        for k in (2, 3, 4):  # smooth bumps; amplitudes keep the outline star-shaped (radius > 0.4)
            radius += float(rng.uniform(0.0, 0.3 / k)) * np.cos(
                k * theta + float(rng.uniform(0, 2 * math.pi))
            )
        turn = float(rng.uniform(0, 2 * math.pi))
        xs = cx + ow / 2 * radius * np.cos(theta + turn) / radius.max()
        ys = cy + oh / 2 * radius * np.sin(theta + turn) / radius.max()
        cv2.fillPoly(canvas, [np.stack([xs, ys], axis=1).round().astype(np.int32)], 255)


@dataclass
class MixtureMaskGenerator(MaskSampler):
    """Draws each mask from one component, picked with probability proportional to its weight."""

    components: Sequence[MaskSampler] = ()
    weights: Sequence[float] = ()
    min_hole_ratio: float = 0.0
    max_hole_ratio: float = 1.0

    def __post_init__(self) -> None:
        if len(self.components) == 0:
            raise ValueError("a mixture needs at least one component")
        if len(self.weights) != len(self.components):
            raise ValueError(f"{len(self.components)} components but {len(self.weights)} weights")
        w = np.asarray(self.weights, dtype=np.float64)
        if np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"mixture weights must be non-negative with a positive sum, got {list(self.weights)}"
            )
        self._probs = w / w.sum()

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """Draw one mask from a randomly chosen component: (height, width) float32, 1 = valid."""
        choice = int(rng.choice(len(self.components), p=self._probs))
        return self.components[choice].sample(rng, height, width)

    def with_hole_ratio_range(self, low: float, high: float) -> MixtureMaskGenerator:
        """Every component constrained to ``low < ratio <= high``."""
        super().with_hole_ratio_range(low, high)  # validates the range
        return replace(
            self,
            components=[c.with_hole_ratio_range(low, high) for c in self.components],
            min_hole_ratio=low,
            max_hole_ratio=high,
        )


class ExternalMaskSampler(MaskSampler):
    """A generator from outside the package (any object with ``sample(rng, height, width)``), checked and held to
    a hole-ratio range by redrawing.

    Its masks are checked on every draw: (height, width), values in [0, 1], 1 = valid, 0 = hole; anything else is a
    ValueError naming the generator's class. Within a range (:meth:`with_hole_ratio_range`) a mask outside it is
    redrawn, up to ``max_tries`` times (then, as with the built-in generators, a warning and the last draw).

    Example:
        >>> class Square:
        ...     def sample(self, rng, height, width):
        ...         mask = np.ones((height, width), np.float32)
        ...         mask[:4, :4] = 0
        ...         return mask
        >>> sampler = ExternalMaskSampler(Square())
        >>> mask_hole_ratio(sampler.sample(np.random.default_rng(0), 8, 8))
        0.25
    """

    def __init__(self, generator: object, max_tries: int = 100) -> None:
        if not callable(getattr(generator, "sample", None)):
            raise ValueError(f"{type(generator).__name__} has no sample(rng, height, width) method")
        self.generator, self.max_tries = generator, max_tries

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """One checked mask of the generator within the hole-ratio range: (height, width) float32, 1 = valid."""
        for _ in range(self.max_tries):
            mask = self._checked(self.generator.sample(rng, height, width), height, width)
            if self._in_range(mask_hole_ratio(mask)):
                return mask
        log.warning(  # as the built-in generators do: the caller (e.g. a binned draw) decides what follows
            "%s drew no mask with a hole ratio in (%.3f, %.3f] at %dx%d in %d tries; returning one with ratio %.4f",
            type(self.generator).__name__,
            self.min_hole_ratio,
            self.max_hole_ratio,
            height,
            width,
            self.max_tries,
            mask_hole_ratio(mask),
        )
        return mask

    def _checked(self, mask: object, height: int, width: int) -> np.ndarray:
        arr = np.asarray(mask, dtype=np.float32)
        if arr.shape != (height, width) or not np.all((arr >= 0) & (arr <= 1)):
            raise ValueError(
                f"{type(self.generator).__name__}.sample returned shape {arr.shape}, values "
                f"[{arr.min() if arr.size else 'none'}, {arr.max() if arr.size else 'none'}]; expected a "
                f"({height}, {width}) mask in [0, 1], 1 = valid pixel, 0 = hole"
            )
        return arr
