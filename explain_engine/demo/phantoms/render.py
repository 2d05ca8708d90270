"""Rendering a phantom from its factors: pose, lungs, anatomy, opacity, devices, acquisition look."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from .factors import DEVICES, OPACITY_ZONES, PhantomFactors
from .lungs import _BANK_RES, _CANON_Y, _CH_DEPTH, _bank_at_size, _default_bank

# ----------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phantom:
    """One rendered phantom.

    Attributes:
        image: ``[size, size]`` float32 in [0, 1], bright = dense.
        opacity_mask: ``[size, size]`` bool, where the airspace opacity is (empty for negatives).
        lung_mask: ``[size, size]`` bool, both lung fields.
        factors: the factors it was rendered from.
    """

    image: np.ndarray
    opacity_mask: np.ndarray
    lung_mask: np.ndarray
    factors: PhantomFactors


@functools.lru_cache(maxsize=8)
def _pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.broadcast_to(c[None, :], (size, size)), np.broadcast_to(c[:, None], (size, size))


class _Pose:
    """Maps patient (canonical) coordinates to image coordinates and back: scale, rotate, shift."""

    def __init__(self, f: PhantomFactors):
        t = math.radians(f.rotation_deg)
        self.cos, self.sin = math.cos(t), math.sin(t)
        self.scale = f.scale
        self.cx, self.cy = 0.5 + f.shift_x, 0.5 + f.shift_y

    def to_patient(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        du, dv = (u - self.cx) / self.scale, (v - self.cy) / self.scale
        return self.cos * du + self.sin * dv + 0.5, -self.sin * du + self.cos * dv + 0.5

    def to_image(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - 0.5, y - 0.5
        return (
            (self.cos * dx - self.sin * dy) * self.scale + self.cx,
            (self.sin * dx + self.cos * dy) * self.scale + self.cy,
        )


def _bilinear(padded: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinearly sample ``padded [S + 2, S + 2, C]`` (an ``[S, S, C]`` grid with a one-pixel zero border).

    ``x, y`` are normalised coordinates of the unpadded grid; points off the grid read zero. Channels are
    last so that one gather fetches all of them. Returns float32 ``[C, *x.shape]`` in the units of ``padded``.
    """
    sp, _, c = padded.shape
    s = sp - 2
    # +0.5 maps pixel centres onto integer positions of the padded grid; clipping parks every
    # off-grid point on the zero border.
    px = np.clip(x.ravel() * s + 0.5, 0.0, s + 0.999)
    py = np.clip(y.ravel() * s + 0.5, 0.0, s + 0.999)
    x0 = px.astype(np.intp)
    y0 = py.astype(np.intp)
    fx = (px - x0).astype(np.float32)[:, None]
    fy = (py - y0).astype(np.float32)[:, None]
    i00 = y0 * sp + x0
    if padded.dtype == np.uint8 and c == 4:
        # Four uint8 channels gather as one uint32 each: a 1-D take is much faster than a row gather.
        flat: np.ndarray = padded.reshape(-1, 4).view(np.uint32).ravel()

        def gather(i: np.ndarray) -> np.ndarray:
            return flat.take(i).view(np.uint8).reshape(-1, 4).astype(np.float32)
    else:
        flat = padded.reshape(-1, c)

        def gather(i: np.ndarray) -> np.ndarray:
            return flat.take(i, axis=0).astype(np.float32, copy=False)

    a = gather(i00)
    b = gather(i00 + 1)
    cc = gather(i00 + sp)
    d = gather(i00 + sp + 1)
    top = a + (b - a) * fx
    bottom = cc + (d - cc) * fx
    out = top + (bottom - top) * fy
    return np.ascontiguousarray(out.T).reshape((c, *x.shape))


def _smooth_noise(rng: np.random.Generator, grid: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth random field in [-1, 1]-ish sampled at (x, y): the same field whatever the image size."""
    coarse = np.zeros((grid + 2, grid + 2, 1), np.float32)
    coarse[1:-1, 1:-1, 0] = rng.standard_normal((grid, grid))
    return _bilinear(coarse, x, y)[0]


def _splat(size: int, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Deposit weights ``w`` at image points (u, v) with bilinear weights onto a ``[size, size]`` canvas."""
    px = u * size - 0.5
    py = v * size - 0.5
    x0 = np.floor(px).astype(np.intp)
    y0 = np.floor(py).astype(np.intp)
    fx = px - x0
    fy = py - y0
    out = np.zeros(size * size, np.float64)
    for dx, dy, ww in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xx, yy = x0 + dx, y0 + dy
        ok = (xx >= 0) & (xx < size) & (yy >= 0) & (yy < size)
        out += np.bincount(yy[ok] * size + xx[ok], weights=(w * ww)[ok], minlength=size * size)
    return out.reshape(size, size).astype(np.float32)


def _polyline(points: np.ndarray, n: int) -> np.ndarray:
    """Resample a polyline ``[K, 2]`` to ``n`` points evenly spaced along its length, ``[n, 2]``."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    t = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, t[-1], n)
    return np.stack([np.interp(s, t, points[:, 0]), np.interp(s, t, points[:, 1])], axis=1)


def _smooth_curve(ctrl: np.ndarray, n: int) -> np.ndarray:
    """Catmull-Rom-like smooth curve through control points ``[K, 2]``, ``[n, 2]``."""
    k = len(ctrl)
    t = np.linspace(0, k - 1, n)
    i = np.clip(np.floor(t).astype(int), 0, k - 2)
    f = (t - i)[:, None]
    p0 = ctrl[np.clip(i - 1, 0, k - 1)]
    p1 = ctrl[i]
    p2 = ctrl[i + 1]
    p3 = ctrl[np.clip(i + 2, 0, k - 1)]
    return 0.5 * (
        2 * p1 + (-p0 + p2) * f + (2 * p0 - 5 * p1 + 4 * p2 - p3) * f**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * f**3
    )


_VESSEL_STEPS = 28
# Calibre along a branch: tapering from the origin towards the periphery.
_VESSEL_TAPER = (1.0 - np.linspace(0.0, 0.9, _VESSEL_STEPS)) ** 1.3


def _vessel_points(rng: np.random.Generator, hila: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Branching pulmonary vessel trees from both hila, as weighted points ``[P, 3]`` (x, y, weight).

    Nine trunks per lung fan out from the hilum (apex, lateral, base), each bends as a random walk and gives
    off two side branches. Both lungs are drawn in one vectorised pass.
    """
    steps, n_trunks = _VESSEL_STEPS, 9
    side = np.repeat([0, 1], n_trunks)
    lateral = np.where(side == 0, -1.0, 1.0)
    w = boxes[:, 1] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 2]
    reach = 0.9 * np.maximum(w, 0.5 * h)[side]
    phi = np.tile(np.linspace(-1.35, 1.45, n_trunks), 2) + rng.normal(0, 0.12, 2 * n_trunks)
    length = reach * rng.uniform(0.55, 0.95, 2 * n_trunks) * (0.75 + 0.25 * np.cos(phi))
    start_x, start_y = hila[side, 0], hila[side, 1]
    amp0 = np.ones(2 * n_trunks)
    out = []
    for generation in range(2):
        turn = np.cumsum(rng.normal(0, 0.1, (len(phi), steps)), axis=1) + phi[:, None]
        step = (length / steps)[:, None]
        xs = start_x[:, None] + np.cumsum(lateral[:, None] * np.cos(turn) * step, axis=1)
        ys = start_y[:, None] + np.cumsum(np.sin(turn) * step, axis=1)
        weight = amp0[:, None] * _VESSEL_TAPER[None, :] * step
        out.append(np.stack([xs.ravel(), ys.ravel(), weight.ravel()], 1))
        if generation == 1:
            break
        # Each trunk gives off two side branches at random points along it.
        nb = len(phi)
        at = rng.integers(steps // 4, 3 * steps // 4, (nb, 2))
        idx = np.arange(nb)[:, None]
        start_x, start_y = xs[idx, at].ravel(), ys[idx, at].ravel()
        phi = (turn[idx, at] + rng.choice([-1.0, 1.0], (nb, 2)) * rng.uniform(0.35, 0.8, (nb, 2))).ravel()
        length = np.repeat(length, 2) * rng.uniform(0.3, 0.55, 2 * nb)
        lateral = np.repeat(lateral, 2)
        amp0 = 0.6 * (1.0 - at.ravel() / steps)
    return np.concatenate(out)


@functools.lru_cache(maxsize=16)
def _marker_glyph(letter: str, px: int) -> np.ndarray:
    """Bright laterality marker (a lead letter on a square tag) of ``px`` pixels, float32 in [0, 1]."""
    big = 64
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=52)
    except TypeError:  # Pillow without FreeType: small bitmap font, upscaled by the resize below
        font = ImageFont.load_default()
    draw.rectangle((2, 2, big - 3, big - 3), outline=90, width=4)
    bbox = draw.textbbox((0, 0), letter, font=font)
    tx = (big - (bbox[2] - bbox[0])) / 2 - bbox[0]
    ty = (big - (bbox[3] - bbox[1])) / 2 - bbox[1]
    draw.text((tx, ty), letter, fill=255, font=font)
    return np.asarray(canvas.resize((px, px), Image.Resampling.LANCZOS), np.float32) / 255.0


@dataclass(frozen=True)
class _Heart:
    """Cardiac silhouette in patient coordinates: a sheared ellipse whose apex points down and to the left."""

    cx: float
    cy: float
    half_w: float
    half_h: float
    shear: float
    top: float
    bottom: float

    def field(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Normalised squared radius: < 1 inside the silhouette."""
        dx = (x - self.cx - self.shear * (y - self.cy)) / self.half_w
        return dx**2 + ((y - self.cy) / self.half_h) ** 2

    def border_x(self, y: float, side: int) -> float:
        """x of the right (side 0, image left) or left (side 1) heart border at height y."""
        q = 1.0 - ((y - self.cy) / self.half_h) ** 2
        half = self.half_w * math.sqrt(max(q, 0.0))
        centre = self.cx + self.shear * (y - self.cy)
        return centre - half if side == 0 else centre + half


def _heart_geometry(f: PhantomFactors, boxes: np.ndarray, mid: float) -> _Heart:
    """Heart from the lung boxes: cardiothoracic ratio ~0.42 x heart_size, one third right of the midline."""
    (rx0, _, ry0, ry1), (_, lx1, ly0, ly1) = boxes
    thorax_w = lx1 - rx0
    width = 0.42 * f.heart_size * thorax_w
    bottom = 0.5 * (ry1 + ly1) + 0.035  # the heart rests on the diaphragm, below the lung bases
    top = ry0 + 0.46 * (ry1 - ry0)
    right_extent = 0.36 * width
    half_w = 0.5 * width / 1.04
    half_h = 0.62 * (bottom - top)
    cy = bottom - 0.45 * (bottom - top)
    shear = 0.28
    # Place the centre so the widest right extent is right_extent from the midline.
    cx = mid - right_extent + half_w
    return _Heart(cx, cy, half_w, half_h, shear, top, bottom)


def _opacity_centre(
    rng: np.random.Generator,
    zone: str,
    boxes: np.ndarray,
    base_y: np.ndarray,
    heart: _Heart,
    radius: float,
) -> tuple[float, float]:
    """Centre of an opacity in ``zone``, in patient coordinates.

    Args:
        boxes: ``[2, 4]`` lung boxes in patient coordinates.
        base_y: ``[2, R]`` lowest lung y per column (patient coordinates), NaN outside the lung.
        heart: the cardiac silhouette (medial zones hug its border).
        radius: opacity radius in normalised units.
    """
    side = 0 if zone.startswith("right") else 1
    part = zone.split("_", 1)[1]
    x0, x1, y0, y1 = boxes[side]
    h = y1 - y0
    res = base_y.shape[1]
    lateral_edge = x0 if side == 0 else x1
    into_lung = -1.0 if side == 0 else 1.0  # from the heart border towards the lateral chest wall

    if part == "upper":
        y = y0 + h * rng.uniform(0.12, 0.35)
        medial = x1 - 0.02 if side == 0 else x0 + 0.02
        return medial + (lateral_edge - medial) * rng.uniform(0.25, 0.7), float(y)
    if part in ("middle", "medial_base"):
        # Sit just outside the heart border so that the opacity effaces it; the medial base also reaches
        # down into the cardiophrenic angle and so effaces the hemidiaphragm too.
        if part == "middle":
            y = heart.top + (y1 - heart.top) * rng.uniform(0.3, 0.6)
        else:
            y = y1 - h * rng.uniform(0.06, 0.12)
        return heart.border_x(y, side) + into_lung * radius * rng.uniform(0.1, 0.5), float(y)
    # Lower zones: on the dome of the hemidiaphragm, lateral to the heart.
    heart_edge = heart.border_x(y1 - 0.03, side)
    lo, hi = (x0 + 0.04, heart_edge - 0.03) if side == 0 else (heart_edge + 0.03, x1 - 0.04)
    x = rng.uniform(lo, hi) if hi > lo else 0.5 * (x0 + x1)
    b = base_y[side, int(np.clip(x * res, 0, res - 1))]
    b = y1 if np.isnan(b) else b
    return float(x), float(b - radius * rng.uniform(0.2, 0.6))


def _diaphragm_line(base_y: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Hemidiaphragm height per x, ``[2, K]`` (x, y) sorted by x, from the lung bases in patient coordinates.

    Between the lungs (under the heart) the line is bridged linearly; lateral to the lungs it drops into the
    costophrenic recesses.
    """
    res = base_y.shape[1]
    xs = (np.arange(res) + 0.5) / res
    ok0 = ~np.isnan(base_y[0])
    ok1 = ~np.isnan(base_y[1])
    x = np.concatenate([[boxes[0, 0] - 0.1], xs[ok0], xs[ok1], [boxes[1, 1] + 0.1]])
    yv = np.concatenate([[boxes[0, 3] + 0.08], base_y[0, ok0], base_y[1, ok1], [boxes[1, 3] + 0.08]])
    order = np.argsort(x, kind="stable")
    return np.stack([x[order], yv[order]])


@dataclass(frozen=True)
class _Grid:
    """The pixel grid of one phantom in both frames: image (u, v) and patient (x, y), all ``[size, size]``."""

    size: int
    pose: _Pose
    u: np.ndarray
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class _Chest:
    """The lung fields of one phantom and the landmarks derived from them (patient coordinates)."""

    lungs: np.ndarray  # [2, S, S]: right, left, soft-edged
    depth: np.ndarray  # air-column depth inside the lungs
    lung: np.ndarray  # both lungs
    lung_mask: np.ndarray
    boxes: np.ndarray  # [2, 4]: (x0, x1, y0, y1) of the right and the left lung
    base_y: np.ndarray  # [2, _BANK_RES]: the lung bases
    mid: float  # midline between the lungs
    lung_bottom: float
    dxm: np.ndarray  # x - mid
    adx: np.ndarray  # |x - mid|


@dataclass(frozen=True)
class _Mediastinum:
    heart: _Heart
    carina_y: float
    hila: np.ndarray  # [2, 2]: (x, y) of the right and the left hilum


def render_phantom(factors: PhantomFactors, *, size: int = 128, seed: int | Sequence[int] = 0) -> Phantom:
    """Render the phantom described by ``factors``.

    Density is accumulated in arbitrary attenuation units (about 1 = the thickest soft tissue), one structure
    after the other, and turned into display brightness at the end, as a detector and display LUT would.

    Args:
        factors: the generative factors (see ``PhantomFactors``).
        size: output side in pixels (square); 64-256 are the intended sizes.
        seed: seed (int or sequence of ints) for the nuisance detail: vessel branching, opacity lobules,
            textures and noise. The same factors and seed give the same anatomy at every size.

    Returns:
        ``Phantom`` with ``image [size, size]`` float32 in [0, 1] (bright = dense), boolean ``opacity_mask``
        and ``lung_mask``, and the factors.
    """
    f = factors
    _check_factors(f)
    rng = np.random.default_rng(seed)
    # Pixel-level fields need size-dependent numbers of draws; they come from their own generator so the
    # main stream, and with it the anatomy, is the same at every size.
    pixel_rng = np.random.default_rng(rng.integers(0, 2**63))
    pose = _Pose(f)
    u, v = _pixel_centres(size)
    x, y = pose.to_patient(u, v)
    grid = _Grid(size, pose, u, x, y)

    # The order of the steps is the order of the draws from ``rng``: changing it changes every phantom.
    chest = _chest(f, grid)
    density, body, below, half_w = _body_density(f, grid, chest)
    mediastinum = _add_mediastinum(density, f, grid, chest, below)
    air = _aeration(rng, grid, chest)
    opacity, opacity_mask = _opacity(f, rng, grid, chest, mediastinum.heart)
    # Fluid replaces air; where the opacity touches the heart or diaphragm their border loses contrast.
    # Consolidated lung is also a little denser than the thin air column at the lung margins suggests, so
    # peripheral and basal opacities stay visible.
    lungs = chest.lungs
    density -= air - f.opacity_density * opacity * (air + 0.1 * lungs[0] + 0.1 * lungs[1])
    _add_lung_markings(density, rng, pixel_rng, grid, chest, mediastinum.hila, opacity)
    _add_ribs(density, f, rng, grid, chest, half_w)
    _add_shoulder_girdle(density, f, grid, chest, body, half_w)
    dome, gas_x = _add_stomach_bubble(density, grid, chest)
    if f.breast_shadows:
        _add_breast_shadows(density, rng, grid, chest)
    if f.device != "none":  # radio-opaque, in patient coordinates
        density += _device_density(
            f.device,
            rng,
            pose,
            size,
            chest.mid,
            mediastinum.carina_y,
            mediastinum.hila,
            dome,
            gas_x,
            chest.boxes,
        )
    img = _expose(density, f, rng, grid)
    _add_marker(img, f.marker, size)
    image = _add_quantum_noise(img, f, pixel_rng, size)
    return Phantom(image=image, opacity_mask=opacity_mask, lung_mask=chest.lung_mask, factors=f)


def _check_factors(f: PhantomFactors) -> None:
    if f.opacity_zone is not None and f.opacity_zone not in OPACITY_ZONES:
        raise ValueError(f"unknown opacity zone {f.opacity_zone!r}")
    if f.device not in DEVICES:
        raise ValueError(f"unknown device {f.device!r}")
    bank = _default_bank()
    if not 0 <= f.lung_mask_index < len(bank):
        raise ValueError(f"lung_mask_index {f.lung_mask_index} out of range 0..{len(bank) - 1}")


def _chest(f: PhantomFactors, grid: _Grid) -> _Chest:
    """Lungs: the real mask sampled in canonical coordinates; inspiration stretches them downwards."""
    x, y = grid.x, grid.y
    bank = _default_bank()
    ytop = _CANON_Y[0]
    insp = f.inspiration
    sampled = _bilinear(_bank_at_size(grid.size)[f.lung_mask_index], x, ytop + (y - ytop) / insp) * (
        1.0 / 255.0
    )
    # Resampling softens the edge; restore a pleura-sharp border about one pixel wide.
    lungs = np.clip(sampled[:2] * 1.3 - 0.15, 0.0, 1.0)  # [2, S, S]: right, left
    lung = lungs[0] + lungs[1]
    boxes = bank.boxes[f.lung_mask_index].copy()
    boxes[:, 2:] = ytop + (boxes[:, 2:] - ytop) * insp
    base_y = ytop + (bank.base_y[f.lung_mask_index] - ytop) * insp
    (_, rx1, _, ry1), (lx0, _, _, ly1) = boxes
    mid = 0.5 * (rx1 + lx0)
    dxm = x - mid
    return _Chest(
        lungs=lungs,
        depth=sampled[_CH_DEPTH],
        lung=lung,
        lung_mask=lung >= 0.5,
        boxes=boxes,
        base_y=base_y,
        mid=mid,
        lung_bottom=max(ry1, ly1),
        dxm=dxm,
        adx=np.abs(dxm),
    )


def _body_density(
    f: PhantomFactors, grid: _Grid, chest: _Chest
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Body: path length through an elliptical cross-section, thinning to the skin; neck and shoulders; the
    denser abdomen below the diaphragm. Returns (density, body, below the diaphragm, half width)."""
    x, y = grid.x, grid.y
    half_w = 0.47 * (0.98 + 0.12 * (f.habitus - 1.0))
    neck = 0.105
    # The trapezius slopes from the neck out to the shoulders, which round off over the lung apices.
    shoulder = np.clip((y + 0.01) / 0.22, 0.0, 1.0)
    width = neck + (half_w - neck) * (1.0 - (1.0 - shoulder) ** 3)
    # The chest wall bulges out over the lower ribs; the waist narrows below them.
    width = width * (1.0 + 0.05 * np.exp(-(((y - 0.6) / 0.25) ** 2)))
    width = width - 0.04 * np.clip((y - chest.lung_bottom) / 0.2, 0.0, 1.0)
    body = np.sqrt(np.clip(1.0 - (chest.adx / width) ** 2, 0.0, 1.0))
    density = 0.95 * f.habitus * body
    # The hemidiaphragm line across the chest (lung bases, bridged under the heart): below it lie the liver,
    # spleen and stomach, with no aerated lung in front, so the abdomen is denser than the chest wall.
    diaphragm = _diaphragm_line(chest.base_y, chest.boxes)
    below = np.clip((y - np.interp(x, diaphragm[0], diaphragm[1]).astype(np.float32)) / 0.02 + 0.5, 0.0, 1.0)
    density += 0.14 * f.habitus * body * below
    return density, body, below, half_w


def _add_mediastinum(
    density: np.ndarray, f: PhantomFactors, grid: _Grid, chest: _Chest, below: np.ndarray
) -> _Mediastinum:
    """Heart, great vessels, aortic knob, spine, trachea and hila, added to ``density``."""
    x, y, dxm, mid = grid.x, grid.y, chest.dxm, chest.mid
    (_, _, ry0, ry1), (_, _, ly0, ly1) = chest.boxes
    heart = _heart_geometry(f, chest.boxes, mid)
    heart_field = heart.field(x, y)
    # Projected thickness of an ellipsoid: a crisp border against the aerated lung.
    # Below the diaphragm the heart blends into the equally dense abdomen.
    density += 0.52 * np.sqrt(np.clip(1.0 - heart_field, 0.0, 1.0)) * (1.0 - below)
    upper = np.clip((heart.top + 0.03 - y) / 0.06, 0.0, 1.0) * np.clip((y - ry0 + 0.02) / 0.08, 0.0, 1.0)
    vessels_w = 0.055 + 0.01 * (f.heart_size - 1.0)
    density += 0.3 * np.sqrt(np.clip(1.0 - ((dxm + 0.006) / vessels_w) ** 2, 0.0, 1.0)) * upper
    knob_y = ry0 + 0.2 * (ry1 - ry0)
    density += 0.3 * np.exp(-(((x - (mid + 0.05)) / 0.028) ** 2 + ((y - knob_y) / 0.03) ** 2))
    spine = np.sqrt(np.clip(1.0 - (dxm / 0.036) ** 2, 0.0, 1.0))
    vertebrae = 0.7 + 0.3 * np.cos(np.pi * (y - 0.02) / 0.052) ** 2
    density += 0.1 * spine * vertebrae
    carina_y = ry0 + 0.32 * (ry1 - ry0)
    trachea = np.clip(1.0 - ((dxm + 0.004) / 0.018) ** 2, 0.0, 1.0) * np.clip((carina_y - y) / 0.03, 0.0, 1.0)
    density -= 0.16 * trachea
    hila = np.array(
        [
            [heart.border_x(heart.top, 0) - 0.01, ry0 + 0.45 * (ry1 - ry0)],
            [heart.border_x(heart.top, 1) - 0.01, ly0 + 0.40 * (ly1 - ly0)],
        ]
    )
    for hx, hyc in hila:
        density += 0.12 * np.exp(-(((x - hx) / 0.03) ** 2 + ((y - hyc) / 0.05) ** 2))
    return _Mediastinum(heart, carina_y, hila)


def _aeration(rng: np.random.Generator, grid: _Grid, chest: _Chest) -> np.ndarray:
    """Lung aeration: a thicker air column in the lung centre than at the apices and lateral margins."""
    air = chest.lung * (0.1 + 0.72 * chest.depth)
    # Aeration is never perfectly even (posture, breath hold, body habitus): low-frequency patches of
    # slightly denser lung in both classes, so that only a real opacity stands out.
    uneven = np.clip(_smooth_noise(rng, 6, grid.x, grid.y), 0.0, None)
    air *= 1.0 - rng.uniform(0.0, 0.22) * np.minimum(uneven, 1.5)
    return air


def _opacity(
    f: PhantomFactors, rng: np.random.Generator, grid: _Grid, chest: _Chest, heart: _Heart
) -> tuple[np.ndarray, np.ndarray]:
    """The opacity of a positive: clustered lobules of fluid-filled airspaces confined to one lung.
    Returns (opacity 0..1, its mask); zeros and an empty mask for negatives."""
    x, y, size = grid.x, grid.y, grid.size
    opacity = np.zeros_like(x)
    opacity_mask = np.zeros(x.shape, bool)
    if f.label != 1 or f.opacity_zone is None or f.opacity_density <= 0:
        return opacity, opacity_mask
    boxes = chest.boxes
    side = 0 if f.opacity_zone.startswith("right") else 1
    lung_h = boxes[side, 3] - boxes[side, 2]
    radius = max(f.opacity_size * lung_h, 1.5 / size)
    ccx, ccy = _opacity_centre(rng, f.opacity_zone, boxes, chest.base_y, heart, radius)
    n_lobules = 4
    offsets = rng.normal(0.0, 0.5 * radius, (n_lobules, 2))
    offsets[0] = 0.0
    sigmas = radius * rng.uniform(0.5, 0.9, n_lobules)
    sigmas[0] = radius
    weights = rng.uniform(0.6, 1.0, n_lobules)
    weights[0] = 1.0
    for (ox, oy), s, wgt in zip(offsets, sigmas, weights, strict=True):
        opacity += wgt * np.exp(-((x - ccx - ox) ** 2 + (y - ccy - oy) ** 2) / (2 * s * s))
    patchy = _smooth_noise(rng, 28, x, y)
    opacity = np.clip(opacity * (0.9 + 0.2 * patchy), 0.0, None) * chest.lungs[side]
    peak = opacity.max()
    if peak > 0:
        opacity /= peak
    opacity_mask = (opacity >= 0.4) & chest.lung_mask
    if not opacity_mask.any():  # tiny images: keep at least the core pixel
        opacity_mask.flat[np.argmax(opacity * chest.lung_mask)] = True
    # A flat-topped profile: consolidated airspaces are uniformly dense, with a hazy margin.
    return np.clip(opacity * 1.25, 0.0, 1.0), opacity_mask


def _add_lung_markings(
    density: np.ndarray,
    rng: np.random.Generator,
    pixel_rng: np.random.Generator,
    grid: _Grid,
    chest: _Chest,
    hila: np.ndarray,
    opacity: np.ndarray,
) -> None:
    """Lung markings: vessels branch out from the hila and taper towards the periphery; a fine texture."""
    size, lung = grid.size, chest.lung
    pts = _vessel_points(rng, hila, chest.boxes)
    vu, vv = grid.pose.to_image(pts[:, 0], pts[:, 1])
    vessels = _splat(size, vu, vv, pts[:, 2] * size)
    vessels = ndimage.gaussian_filter(vessels, sigma=max(0.45, 0.006 * size))
    # Markings fade towards the periphery, where the vessels are too small to resolve.
    density += (
        0.1 * np.minimum(vessels, 2.0) * lung * np.minimum(1.6 * chest.depth, 1.0) * (1.0 - 0.7 * opacity)
    )
    texture = ndimage.uniform_filter(pixel_rng.standard_normal(grid.x.shape, dtype=np.float32), 3)
    density += 0.025 * texture * lung


def _add_ribs(
    density: np.ndarray,
    f: PhantomFactors,
    rng: np.random.Generator,
    grid: _Grid,
    chest: _Chest,
    half_w: float,
) -> None:
    """Ribs: posterior ribs arch up-and-out from the spine then curve down laterally; fainter anterior ribs
    slope down towards the sternum."""
    y = grid.y
    (_, _, ry0, _), (_, _, ly0, _) = chest.boxes
    d = chest.adx / half_w
    ribs_top, ribs_bottom = min(ry0, ly0) - 0.02, chest.lung_bottom + 0.02
    t = (y + 0.08 * d - 0.25 * d**2 - ribs_top) / (ribs_bottom - ribs_top) * (1.0 / f.inspiration) ** 0.3
    n_ribs = 9.5 + rng.uniform(-0.5, 0.5)
    k = n_ribs * np.clip(t, 0.0, 1.3) ** 0.8 + rng.uniform(0, 1)
    rib_profile = (0.5 + 0.5 * np.cos(2 * np.pi * k)) ** 3
    cage = np.clip((d - 0.06) / 0.1, 0.0, 1.0) * np.clip((1.02 - d) / 0.08, 0.0, 1.0)
    cage *= np.clip((t + 0.05) / 0.08, 0.0, 1.0) * np.clip((1.15 - t) / 0.2, 0.0, 1.0)
    # Ribs stand out against the aerated lung and are hard to see through the soft tissue.
    see = 0.35 + 0.65 * chest.lung
    density += 0.09 * rib_profile * cage * see
    t2 = (y - 0.32 * d - ribs_top + 0.12) / (ribs_bottom - ribs_top)
    k2 = 7.0 * np.clip(t2, 0.0, 1.2) + rng.uniform(0, 1)
    anterior = (0.5 + 0.5 * np.cos(2 * np.pi * k2)) ** 3
    front = np.clip((d - 0.3) / 0.15, 0.0, 1.0) * np.clip((0.98 - d) / 0.1, 0.0, 1.0)
    front *= np.clip(t2 / 0.1, 0.0, 1.0) * np.clip((1.0 - t2) / 0.2, 0.0, 1.0)
    density += 0.04 * anterior * front * see


def _add_shoulder_girdle(
    density: np.ndarray, f: PhantomFactors, grid: _Grid, chest: _Chest, body: np.ndarray, half_w: float
) -> None:
    """Clavicles from the sternal notch out to the shoulders, projected higher and flatter when AP; scapulae
    rotated off the lungs on a PA film, projected over the upper lateral lungs when AP."""
    y, adx, portable = grid.y, chest.adx, f.portable_ap
    ry0 = chest.boxes[0, 2]
    lat = adx - 0.035
    cl_y0 = (0.165 if not portable else 0.12) + 0.3 * (ry0 - _CANON_Y[0])
    cl_rise = 0.06 if not portable else 0.02
    cs = np.clip(lat / 0.30, 0.0, 1.0)
    cl_y = cl_y0 - cl_rise * cs + 0.012 * np.sin(2 * np.pi * cs)
    clavicle = np.sqrt(np.clip(1.0 - ((y - cl_y) / 0.021) ** 2, 0.0, 1.0))
    clavicle *= np.clip(lat / 0.02, 0.0, 1.0) * np.clip((0.33 - lat) / 0.03, 0.0, 1.0)
    density += 0.3 * clavicle
    d = adx / half_w
    sc_edge = 0.74 if portable else 0.95
    sc_x = sc_edge + 0.12 * np.clip((y - 0.15) / 0.35, 0.0, 1.0) ** 2
    scapula = np.clip((d - sc_x) / 0.03, 0.0, 1.0) * np.clip((0.55 - y) / 0.15, 0.0, 1.0)
    scapula *= np.clip((y - 0.1) / 0.05, 0.0, 1.0)
    density += 0.14 * scapula * body


def _add_stomach_bubble(density: np.ndarray, grid: _Grid, chest: _Chest) -> tuple[float, float]:
    """The gas bubble of the stomach under the left hemidiaphragm. Returns (the dome's y, the bubble's x)."""
    x, y = grid.x, grid.y
    (lx0, lx1, _, ly1) = chest.boxes[1]
    gas_x = lx0 + 0.6 * (lx1 - lx0)
    dome = chest.base_y[1, int(np.clip(gas_x * _BANK_RES, 0, _BANK_RES - 1))]
    dome = ly1 if np.isnan(dome) else dome
    gas = np.exp(-(((x - gas_x) / 0.055) ** 2 + ((y - dome - 0.055) / 0.028) ** 2))
    density -= 0.22 * gas * (1.0 - chest.lung)
    return dome, gas_x


def _add_breast_shadows(density: np.ndarray, rng: np.random.Generator, grid: _Grid, chest: _Chest) -> None:
    """Breast shadows: rounded soft tissue over the lung bases with a crisp lower border."""
    x, y, boxes = grid.x, grid.y, chest.boxes
    size_b = rng.uniform(0.13, 0.19)
    for side in (0, 1):
        bx = boxes[side, 0] + (0.45 if side == 0 else 0.55) * (boxes[side, 1] - boxes[side, 0])
        by = boxes[side, 3] - 0.02 + rng.normal(0.0, 0.015)
        r2 = ((x - bx) / (1.15 * size_b)) ** 2 + ((y - by) / size_b) ** 2
        density += 0.16 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) * np.clip((y - by + size_b) / size_b, 0.0, 1.0)


def _expose(density: np.ndarray, f: PhantomFactors, rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    """Acquisition: film-like response, exposure, contrast, scatter (AP haze), heel effect."""
    gain = 1.6 / f.exposure
    img = 1.0 - np.exp(-gain * np.clip(density, 0.0, None))
    img /= 1.0 - math.exp(-gain * 1.3)
    img = np.clip(img, 0.0, 1.0) ** (1.25 * f.contrast)
    if f.portable_ap:
        # Scatter from a bedside exposure without a grid lifts the dark lungs and flattens contrast.
        img = 0.16 + 0.8 * img
    img *= 1.0 + 0.06 * (grid.u - 0.5) * rng.choice([-1.0, 1.0])  # anode heel effect
    return img


def _add_marker(img: np.ndarray, marker: str, size: int) -> None:
    """The laterality marker, on the detector (so not rotated with the patient)."""
    glyph = _marker_glyph(marker, max(5, round(0.075 * size)))
    gh = glyph.shape[0]
    my = max(1, round(0.03 * size))
    mx = max(1, round(0.04 * size)) if marker == "R" else size - gh - max(1, round(0.04 * size))
    patch = img[my : my + gh, mx : mx + gh]
    img[my : my + gh, mx : mx + gh] = np.maximum(patch, 0.95 * glyph)


def _add_quantum_noise(
    img: np.ndarray, f: PhantomFactors, pixel_rng: np.random.Generator, size: int
) -> np.ndarray:
    """Quantum noise, slightly correlated by the detector; the image clipped to [0, 1] as float32."""
    noise = pixel_rng.standard_normal((size, size), dtype=np.float32)
    noise = 0.6 * noise + 1.2 * ndimage.uniform_filter(noise, 3)
    img = img + f.noise_std * noise * (0.6 + 0.4 * img)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _device_density(
    device: str,
    rng: np.random.Generator,
    pose: _Pose,
    size: int,
    mid: float,
    carina_y: float,
    hila: np.ndarray,
    dome: float,
    gas_x: float,
    boxes: np.ndarray,
) -> np.ndarray:
    """Density of a support device, ``[size, size]``; drawn as thin radio-opaque curves."""
    curves: list[tuple[np.ndarray, float]] = []  # (points [n, 2] in patient coords, line density)
    jitter = rng.normal(0.0, 0.008, 8)
    n = 3 * size
    if device == "endotracheal_tube":
        tip_y = carina_y - 0.05 + jitter[0]
        wall = 0.009
        for off in (-wall, wall):
            ctrl = np.array([[mid + off + jitter[1], -0.02], [mid + off + 0.004, 0.12], [mid + off, tip_y]])
            curves.append((_polyline(ctrl, n), 0.35))
        # The radio-opaque stripe along one wall makes the tube easy to spot.
        ctrl = np.array([[mid - wall + jitter[1], -0.02], [mid - wall + 0.004, 0.12], [mid - wall, tip_y]])
        curves.append((_polyline(ctrl, n), 0.6))
    elif device == "central_line":
        # Right subclavian approach: under the clavicle, medially, then down the SVC to the cavoatrial
        # junction.
        x_start = boxes[0, 0] + 0.06 + jitter[0]
        ctrl = np.array(
            [
                [x_start - 0.08, 0.02],
                [x_start, 0.16 + jitter[1]],
                [mid - 0.09, 0.2 + jitter[2]],
                [mid - 0.035, 0.26],
                [mid - 0.03 + jitter[3], hila[0, 1] + 0.08 + jitter[4]],
            ]
        )
        curves.append((_smooth_curve(ctrl, n), 0.7))
    elif device == "nasogastric_tube":
        ctrl = np.array(
            [
                [mid + 0.005 + jitter[0], -0.02],
                [mid + 0.01, 0.3],
                [mid + 0.03, dome - 0.05],
                [gas_x - 0.02 + jitter[1], dome + 0.06],
                [gas_x + 0.04 + jitter[2], dome + 0.05 + jitter[3]],
            ]
        )
        curves.append((_smooth_curve(ctrl, n), 0.6))
    elif device == "ecg_leads":
        pads = np.array(
            [
                [boxes[0, 0] + 0.05, boxes[0, 2] + 0.05],
                [boxes[1, 1] - 0.05, boxes[1, 2] + 0.05],
                [boxes[1, 1] - 0.08, boxes[1, 3] - 0.02],
            ]
        ) + rng.normal(0.0, 0.02, (3, 2))
        for cx, cy in pads:
            ring = np.linspace(0, 2 * np.pi, 4 * size // 8 + 8, endpoint=False)
            rr = 0.018
            ring_pts = np.stack([cx + rr * np.cos(ring), cy + rr * np.sin(ring)], 1)
            curves.append((ring_pts, 0.9))
            lead_end = np.array([cx + rng.uniform(-0.3, 0.3), -0.05])
            ctrl = np.array([[cx, cy], [0.5 * (cx + lead_end[0]) + rng.normal(0, 0.05), 0.5 * cy], lead_end])
            curves.append((_smooth_curve(ctrl, n), 0.25))
    out = np.zeros((size, size), np.float32)
    for pts, line_density in curves:
        step = np.linalg.norm(np.diff(pts, axis=0), axis=1).mean() * size
        iu, iv = pose.to_image(pts[:, 0], pts[:, 1])
        out += _splat(size, iu, iv, np.full(len(pts), line_density * step))
    return ndimage.gaussian_filter(out, sigma=max(0.4, 0.004 * size))
