"""Image transforms with torchvision's names, on Pillow images (and NumPy arrays where noted).

Random transforms draw from minigrad's global generator (``manual_seed`` makes them
reproducible) or from the ``generator`` they are given. ``ToTensor`` turns an (H, W, C) uint8
image into a (C, H, W) float32 tensor in [0, 1]; the transforms before it work on Pillow
images, ``Normalize`` after it on tensors.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

from minigrad import random
from minigrad.tensor import Tensor


def _pil(img: Any, who: str) -> Image.Image:
    if isinstance(img, Image.Image):
        return img
    if isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim in (2, 3):
        return Image.fromarray(img)
    raise TypeError(
        f"{who}: expected a Pillow image or an (H, W[, C]) uint8 array, got "
        f"{type(img).__name__}{getattr(img, 'shape', '')}"
    )


def _size(size: Any, who: str) -> tuple[int, int]:
    """(height, width) from an int or a pair."""
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"{who}: size must be an int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class ToTensor:
    """(H, W, C) uint8 image or array -> (C, H, W) float32 tensor in [0, 1]."""

    def __call__(self, img: Any) -> Tensor:
        a = np.asarray(img)
        if a.dtype != np.uint8:
            raise TypeError(f"ToTensor: expected uint8 pixels, got {a.dtype}")
        if a.ndim == 2:
            a = a[:, :, None]
        return Tensor._from_array(np.ascontiguousarray(a.transpose(2, 0, 1), np.float32) / 255.0)


class Normalize:
    """(x - mean) / std per channel of a (C, H, W) tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(-1, 1, 1)
        if np.any(self.std == 0):
            raise ValueError("Normalize: std must not be 0")

    def __call__(self, t: Tensor) -> Tensor:
        data = t.data if isinstance(t, Tensor) else np.asarray(t, np.float32)
        if data.ndim != 3 or data.shape[0] != self.mean.shape[0] and self.mean.shape[0] != 1:
            raise ValueError(
                f"Normalize: expected a ({self.mean.shape[0]}, H, W) tensor, got {data.shape}"
            )
        return Tensor._from_array(((data - self.mean) / self.std).astype(np.float32))


class Resize:
    """Resize to (height, width), or the shorter side to ``size`` keeping the aspect ratio."""

    def __init__(self, size: Any, interpolation: int = Image.BILINEAR) -> None:
        self.size, self.interpolation = size, interpolation

    def __call__(self, img: Any) -> Image.Image:
        img = _pil(img, "Resize")
        if isinstance(self.size, numbers.Integral):
            w, h = img.size
            short = min(w, h)
            nw, nh = round(w * self.size / short), round(h * self.size / short)
            return img.resize((nw, nh), self.interpolation)
        h, w = _size(self.size, "Resize")
        return img.resize((w, h), self.interpolation)


class CenterCrop:
    def __init__(self, size: Any) -> None:
        self.size = _size(size, "CenterCrop")

    def __call__(self, img: Any) -> Image.Image:
        img = _pil(img, "CenterCrop")
        h, w = self.size
        W, H = img.size
        left, top = (W - w) // 2, (H - h) // 2
        return img.crop((left, top, left + w, top + h))  # pads with black when larger


class RandomCrop:
    """A random (height, width) window, after optional zero ``padding`` on every side."""

    def __init__(self, size: Any, padding: int = 0, generator: Any = None) -> None:
        self.size, self.padding, self.generator = _size(size, "RandomCrop"), padding, generator

    def __call__(self, img: Any) -> Image.Image:
        img = _pil(img, "RandomCrop")
        if self.padding:
            p = self.padding
            padded = Image.new(img.mode, (img.size[0] + 2 * p, img.size[1] + 2 * p))
            padded.paste(img, (p, p))
            img = padded
        h, w = self.size
        W, H = img.size
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the image {(H, W)}")
        rng = random.rng(self.generator)
        top, left = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        return img.crop((left, top, left + w, top + h))


class RandomResizedCrop:
    """A random crop of ``scale`` of the area and ``ratio`` aspect, resized to ``size``
    (torchvision's procedure: 10 tries, then a center crop)."""

    def __init__(
        self,
        size: Any,
        scale=(0.08, 1.0),
        ratio=(3 / 4, 4 / 3),
        interpolation: int = Image.BILINEAR,
        generator: Any = None,
    ) -> None:
        self.size, self.scale, self.ratio = _size(size, "RandomResizedCrop"), scale, ratio
        self.interpolation, self.generator = interpolation, generator

    def window(self, H: int, W: int) -> tuple[int, int, int, int]:
        rng = random.rng(self.generator)
        area = H * W
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= W and 0 < h <= H:
                return int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w
        in_ratio = W / H
        if in_ratio < self.ratio[0]:
            w, h = W, int(round(W / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = H, int(round(H * self.ratio[1]))
        else:
            w, h = W, H
        return (H - h) // 2, (W - w) // 2, h, w

    def __call__(self, img: Any) -> Image.Image:
        img = _pil(img, "RandomResizedCrop")
        top, left, h, w = self.window(img.size[1], img.size[0])
        out_h, out_w = self.size
        return img.resize((out_w, out_h), self.interpolation, box=(left, top, left + w, top + h))


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5, generator: Any = None) -> None:
        self.p, self.generator = p, generator

    def __call__(self, img: Any) -> Any:
        if random.rng(self.generator).random() >= self.p:
            return img
        if isinstance(img, np.ndarray):
            return np.ascontiguousarray(img[:, ::-1])
        return _pil(img, "RandomHorizontalFlip").transpose(Image.FLIP_LEFT_RIGHT)


class RandomVerticalFlip:
    def __init__(self, p: float = 0.5, generator: Any = None) -> None:
        self.p, self.generator = p, generator

    def __call__(self, img: Any) -> Any:
        if random.rng(self.generator).random() >= self.p:
            return img
        if isinstance(img, np.ndarray):
            return np.ascontiguousarray(img[::-1])
        return _pil(img, "RandomVerticalFlip").transpose(Image.FLIP_TOP_BOTTOM)


class RandomRotation:
    """Rotate by an angle uniform in [-degrees, degrees] (or the given range), about the
    centre, keeping the size; uncovered corners are filled with ``fill``."""

    def __init__(self, degrees: Any, fill: int = 0, generator: Any = None) -> None:
        self.degrees = (-degrees, degrees) if isinstance(degrees, numbers.Number) else degrees
        self.fill, self.generator = fill, generator

    def __call__(self, img: Any) -> Image.Image:
        img = _pil(img, "RandomRotation")
        angle = float(random.rng(self.generator).uniform(*self.degrees))
        if angle == 0:
            return img.copy()
        return img.rotate(angle, resample=Image.BILINEAR, fillcolor=self.fill)


class RandomAffine:
    """Random rotation, translation (fractions of the size), scale and shear about the centre."""

    def __init__(
        self,
        degrees: Any,
        translate=None,
        scale=None,
        shear=None,
        fill: int = 0,
        generator: Any = None,
    ) -> None:
        self.degrees = (-degrees, degrees) if isinstance(degrees, numbers.Number) else degrees
        self.translate, self.scale, self.fill, self.generator = translate, scale, fill, generator
        self.shear = (-shear, shear) if isinstance(shear, numbers.Number) else shear

    def __call__(self, img: Any) -> Image.Image:
        img = _pil(img, "RandomAffine")
        rng = random.rng(self.generator)
        W, H = img.size
        angle = math.radians(rng.uniform(*self.degrees))
        tx = ty = 0.0
        if self.translate:
            tx = rng.uniform(-self.translate[0], self.translate[0]) * W
            ty = rng.uniform(-self.translate[1], self.translate[1]) * H
        s = rng.uniform(*self.scale) if self.scale else 1.0
        sh = math.radians(rng.uniform(*self.shear)) if self.shear else 0.0
        # forward map about the centre: translate . rotate . shear . scale; Pillow wants the
        # inverse (output pixel -> input pixel)
        cx, cy = W / 2, H / 2
        a, b = math.cos(angle) * s, -math.sin(angle + sh) * s
        c, d = math.sin(angle) * s, math.cos(angle + sh) * s
        det = a * d - b * c
        ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
        ox, oy = cx + tx, cy + ty
        coeffs = (ia, ib, cx - ia * ox - ib * oy, ic, id_, cy - ic * ox - id_ * oy)
        return img.transform((W, H), Image.AFFINE, coeffs, Image.BILINEAR, fillcolor=self.fill)


class ColorJitter:
    """Random brightness, contrast and saturation factors in [1 - x, 1 + x], and hue shift in
    [-hue, hue] (of a full turn), applied in random order."""

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, generator=None):
        if not 0 <= hue <= 0.5:
            raise ValueError(f"ColorJitter: hue must be in [0, 0.5], got {hue}")
        self.brightness, self.contrast, self.saturation, self.hue = (
            brightness,
            contrast,
            saturation,
            hue,
        )
        self.generator = generator

    def __call__(self, img: Any) -> Image.Image:
        img = _pil(img, "ColorJitter")
        rng = random.rng(self.generator)
        ops = []
        for amount, enhancer in (
            (self.brightness, ImageEnhance.Brightness),
            (self.contrast, ImageEnhance.Contrast),
            (self.saturation, ImageEnhance.Color),
        ):
            if amount:
                factor = float(rng.uniform(max(0.0, 1 - amount), 1 + amount))
                ops.append(lambda im, e=enhancer, f=factor: e(im).enhance(f))
        if self.hue:
            shift = float(rng.uniform(-self.hue, self.hue))
            ops.append(lambda im, s=shift: _shift_hue(im, s))
        for k in rng.permutation(len(ops)):
            img = ops[k](img)
        return img


def _shift_hue(img: Image.Image, shift: float) -> Image.Image:
    if img.mode not in ("RGB", "RGBA"):
        return img
    h, s, v = img.convert("HSV").split()
    h = h.point(lambda x: (x + int(round(shift * 255))) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


class Grayscale:
    """Convert to luminance; ``num_output_channels=3`` repeats it in three channels."""

    def __init__(self, num_output_channels: int = 1) -> None:
        if num_output_channels not in (1, 3):
            raise ValueError("Grayscale: num_output_channels must be 1 or 3")
        self.num_output_channels = num_output_channels

    def __call__(self, img: Any) -> Image.Image:
        gray = _pil(img, "Grayscale").convert("L")
        return gray if self.num_output_channels == 1 else Image.merge("RGB", (gray, gray, gray))
