"""Generated pedestrian datasets written in each release's exact on-disk format.

Why generated data: the smoke and tiny profiles must run the whole harness
(parsers included) on a laptop with no download, and still let the paper's
hypothesis show.  So every identity is a combination of body parts where the
large, salient parts (torso and trouser colour) are *shared by a group of
identities* and only the smaller, less salient parts (shoe colour, hat, bag,
trouser stripes, skin tone) tell identities of a group apart.  A network that
only looks at the most salient region cannot separate a group; one made to look
elsewhere (AEA's complementary network) can.

Cameras differ in background texture and colour, illumination (per-channel
gain), person scale and position; images jitter in pose and colour and some are
occluded by a random block or pole.  Images are 128x64 (HxW) as in Market-1501;
the smallest parts are at least ~8 px tall at that size, so they survive the
smoke input size of 64x32.

Everything is a pure function of the seed: each image draws from its own
generator seeded by ``derive_seed(seed, stream, ...)`` and the files are written
byte-identically (fixed MAT-file header text, no HDF5 timestamps).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from PIL import Image
from tqdm import tqdm

from aea.data.datasets import (
    COUNT_KEYS,
    CUHK03_FILE_NAME,
    CUHK03_IMAGES,
    CUHK03_MAT,
    CUHK03_NP_DIR,
    CUHK03_RELEASE_DIR,
    CUHK03_SETTINGS,
    DUKE_DIR,
    MARKER_NAME,
    MARKET_DIR,
    NUM_CAMS,
    SPLIT_FOLDERS,
    cuhk03_config_name,
    mat_string,
    protocol_split,
    read_protocol,
)
from aea.errors import AEAError
from aea.io import read_json, refuse_foreign_entries, sweep_temp_dirs, temp_dir_beside, write_json
from aea.seeding import derive_seed

log = logging.getLogger(__name__)

HEIGHT, WIDTH = 128, 64
GENERATOR_VERSION = 2  # 2: CUHK03 files in the real ones' form (storage types, testsets)
DEFAULT_OCCLUSION = 0.15


# ----------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class SyntheticSize:
    """How big a generated dataset is.

    ``*_imgs_per_cam`` are inclusive ranges of images per identity per camera
    (per view for CUHK03, capped at its 5); for test identities the first image
    of each camera is the query, the rest go to the gallery.  ``distractors``
    are gallery images that match no query (Market: ``0000_`` images; Duke:
    gallery-only identities, two images each); ``junk`` are Market's ``-1_``
    badly-cropped gallery images.  CUHK03 ignores the camera counts (every
    identity has both views of its camera pair) and distractors/junk.
    """

    train_ids: int
    test_ids: int
    min_cams: int = 2
    max_cams: int = 3
    train_imgs_per_cam: tuple[int, int] = (2, 4)
    test_imgs_per_cam: tuple[int, int] = (2, 3)
    distractors: int = 0
    junk: int = 0
    occlusion: float = DEFAULT_OCCLUSION
    # exact (train, query, gallery) image counts, gallery counting distractors but not junk: the drawn
    # per-camera counts are then nudged to them (a release's documented counts, e.g. Market-1501's)
    image_totals: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        ok = (
            self.train_ids >= 1
            and self.test_ids >= 1
            and 2 <= self.min_cams <= self.max_cams
            and 1 <= self.train_imgs_per_cam[0] <= self.train_imgs_per_cam[1]
            and 2 <= self.test_imgs_per_cam[0] <= self.test_imgs_per_cam[1]
            and self.distractors >= 0
            and self.junk >= 0
            and 0.0 <= self.occlusion <= 1.0
        )
        if not ok:
            raise AEAError(
                f"bad synthetic size {self}; need ids >= 1, 2 <= min_cams <= max_cams, "
                "train images per camera >= 1, test images per camera >= 2 (one query + gallery), occlusion in [0, 1]"
            )


SYNTHETIC_SIZES: dict[str, SyntheticSize] = {
    # the smoke profile: ~100 + 100 identities, several images per identity and camera
    "smoke": SyntheticSize(train_ids=100, test_ids=100, min_cams=2, max_cams=4,
                           train_imgs_per_cam=(2, 4), test_imgs_per_cam=(2, 3), distractors=60, junk=40),
    # end-to-end tests: seconds
    "tiny": SyntheticSize(train_ids=16, test_ids=16, min_cams=2, max_cams=2,
                          train_imgs_per_cam=(1, 2), test_imgs_per_cam=(2, 2), distractors=4, junk=4),
    # Market-1501's scale for the paper-profile rehearsal: its 751 / 750 ids, 2,798 distractors, 3,819 junk and
    # exactly its 12,936 train / 3,368 query / 15,913 gallery images (the count check passes with check_counts on)
    "market-scale": SyntheticSize(train_ids=751, test_ids=750, min_cams=3, max_cams=6,
                                  train_imgs_per_cam=(2, 6), test_imgs_per_cam=(3, 7), distractors=2798, junk=3819,
                                  image_totals=(12936, 3368, 15913)),
}


def resolve_size(size: str | SyntheticSize | Mapping[str, object]) -> SyntheticSize:
    """A size by name ("smoke", "tiny"), a SyntheticSize, or a mapping of its fields (custom counts)."""
    if isinstance(size, SyntheticSize):
        return size
    if isinstance(size, str):
        if size not in SYNTHETIC_SIZES:
            raise AEAError(f"unknown synthetic size {size!r}; choose one of {', '.join(SYNTHETIC_SIZES)} "
                           "or give counts")
        return SYNTHETIC_SIZES[size]
    fields = {f.name for f in dataclasses.fields(SyntheticSize)}
    unknown = set(size) - fields
    if unknown:
        raise AEAError(f"unknown synthetic size field(s) {', '.join(sorted(unknown))}; "
                       f"known: {', '.join(sorted(fields))}")
    values = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in size.items()}
    return SyntheticSize(**values)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- identities

# Large, salient parts: shared by a group of identities.
TORSO_COLOURS = np.array(
    [[185, 40, 40], [40, 65, 175], [40, 145, 65], [215, 190, 50],
     [225, 225, 225], [38, 38, 38], [125, 50, 145], [225, 125, 40]], dtype=np.float32)
TROUSER_COLOURS = np.array(
    [[45, 55, 100], [30, 30, 30], [125, 125, 125], [195, 175, 135], [105, 70, 40]], dtype=np.float32)
# Small, less salient parts: they tell the identities of a group apart.
SHOE_COLOURS = np.array([[235, 235, 235], [25, 25, 25], [205, 35, 35], [30, 160, 170]], dtype=np.float32)
HAT_COLOURS = np.array([[0, 0, 0], [230, 205, 40], [40, 170, 60], [235, 235, 235]], dtype=np.float32)  # 0: no hat
BAG_COLOURS = np.array([[0, 0, 0], [135, 85, 40], [120, 175, 225], [195, 60, 155]], dtype=np.float32)  # 0: no bag
STRIPES = ("none", "vertical", "band")
SKIN_COLOURS = np.array([[232, 192, 160], [192, 142, 102], [122, 86, 60]], dtype=np.float32)
HAIR_COLOUR = np.array([50, 35, 25], dtype=np.float32)

NUM_SMALL_CODES = len(SHOE_COLOURS) * len(HAT_COLOURS) * len(BAG_COLOURS) * len(STRIPES) * len(SKIN_COLOURS)
IDS_PER_GROUP = 8

# generator streams of derive_seed: one per independent use of randomness
_S_IDENTITIES, _S_CAMERAS, _S_PLAN, _S_IMAGE, _S_DETECTED, _S_TESTSETS = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class Identity:
    """One pedestrian: indices into the part palettes. ``group`` = its (torso, trousers) pair."""

    group: int
    torso: int
    trousers: int
    shoes: int
    hat: int
    bag: int
    stripes: int
    skin: int

    @property
    def small_code(self) -> tuple[int, int, int, int, int]:
        return (self.shoes, self.hat, self.bag, self.stripes, self.skin)


def make_identities(num_ids: int, seed: int) -> list[Identity]:
    """``num_ids`` distinct identities in groups of ~IDS_PER_GROUP sharing torso and trouser colour.

    Within a group the small-part combinations are all different, so the large
    parts alone never identify a person (unless the count forces singleton groups).
    """
    large = [(t, r) for t in range(len(TORSO_COLOURS)) for r in range(len(TROUSER_COLOURS))]
    num_groups = int(np.clip(round(num_ids / IDS_PER_GROUP), 1, len(large)))
    if -(-num_ids // num_groups) > NUM_SMALL_CODES:
        raise AEAError(f"{num_ids} synthetic identities is more than the generator can make distinct; use fewer")
    rng = np.random.default_rng(derive_seed(seed, _S_IDENTITIES))
    pairs = [large[i] for i in rng.choice(len(large), size=num_groups, replace=False)]
    group_of = rng.permutation(num_ids) % num_groups
    shape = (len(SHOE_COLOURS), len(HAT_COLOURS), len(BAG_COLOURS), len(STRIPES), len(SKIN_COLOURS))
    small = np.empty((num_ids, len(shape)), dtype=np.int64)
    for g in range(num_groups):
        members = np.flatnonzero(group_of == g)
        codes = rng.choice(NUM_SMALL_CODES, size=len(members), replace=False)
        small[members] = np.stack(np.unravel_index(codes, shape), axis=1)
    return [
        Identity(int(g), pairs[g][0], pairs[g][1], *(int(v) for v in small[i]))
        for i, g in enumerate(group_of)
    ]


# ----------------------------------------------------------------------------- cameras


@dataclass(frozen=True)
class CameraStyle:
    """What makes one camera look different: background, illumination, framing."""

    texture: int  # 0 h-stripes, 1 v-stripes, 2 checker, 3 diagonal, 4 wall/floor, 5 blotches
    colours: np.ndarray  # (2, 3) background colours
    period: float
    gain: np.ndarray  # (3,) per-channel illumination gain
    scale: float  # person height = 120 * scale px
    dx: float
    dy: float


def camera_styles(num_cams: int, seed: int) -> list[CameraStyle]:
    rng = np.random.default_rng(derive_seed(seed, _S_CAMERAS))
    textures = np.concatenate([rng.permutation(6) for _ in range(-(-num_cams // 6))])
    styles = []
    for c in range(num_cams):
        base = rng.uniform(70, 190, size=3)
        colours = np.stack([base, np.clip(base + rng.uniform(-60, 60, size=3), 20, 235)]).astype(np.float32)
        gain = (rng.uniform(0.7, 1.25) * rng.uniform(0.88, 1.12, size=3)).astype(np.float32)
        styles.append(CameraStyle(int(textures[c]), colours, float(rng.uniform(8, 22)), gain,
                                  float(rng.uniform(0.8, 0.98)), float(rng.uniform(-4, 4)), float(rng.uniform(-3, 3))))
    return styles


# ----------------------------------------------------------------------------- drawing

_YY, _XX = (a.astype(np.float32) + 0.5 for a in np.mgrid[0:HEIGHT, 0:WIDTH])


_PARTS = ("torso", "trousers", "skin", "stripes", "shoes", "bag", "hat")


@dataclass(frozen=True)
class _Variation:
    """Everything random about one image, drawn in one fixed order whoever is in it.

    So two identities rendered from equal generators differ only where their
    parts differ (the part-visibility test relies on it), and a CUHK03
    detected box is the labeled image's very scene, displaced.
    """

    phase: float  # background pattern offset
    horizon: float
    blotches: np.ndarray  # (5, 3) low-resolution background field
    scale: float
    dx: float
    dy: float
    stride: float  # legs apart
    swing: float  # arms
    bag_side: float  # -1 left, 1 right
    jitter: dict[str, np.ndarray]  # part -> colour offset (3,)
    occluder: tuple[bool, bool, np.ndarray, float, float, float, float]  # on, pole, colour, h, w, y, x fractions
    gain: float
    noise: np.ndarray  # (HEIGHT, WIDTH, 3)

    @classmethod
    def draw(cls, rng: np.random.Generator, occlusion: float) -> _Variation:
        return cls(
            phase=float(rng.uniform(0, 1)), horizon=float(rng.uniform(-6, 6)),
            blotches=rng.uniform(0, 1, size=(5, 3)).astype(np.float32),
            scale=float(rng.uniform(0.95, 1.05)), dx=float(rng.uniform(-3, 3)), dy=float(rng.uniform(-3, 3)),
            stride=float(rng.uniform(-4, 4)), swing=float(rng.uniform(-2, 2)), bag_side=float(rng.choice([-1.0, 1.0])),
            jitter={part: rng.uniform(-10, 10, size=3).astype(np.float32) for part in _PARTS},
            occluder=(bool(rng.random() < occlusion), bool(rng.random() < 0.5),
                      rng.uniform(20, 235, size=3).astype(np.float32), *(float(v) for v in rng.random(4))),
            gain=float(rng.uniform(0.9, 1.1)), noise=rng.normal(0, 4, size=(HEIGHT, WIDTH, 3)).astype(np.float32),
        )


def _background(cam: CameraStyle, var: _Variation) -> np.ndarray:
    p = cam.period
    ph = var.phase * p
    t = cam.texture
    if t == 0:
        w = ((_YY + ph) // (p / 2)) % 2
    elif t == 1:
        w = ((_XX + ph) // (p / 2)) % 2
    elif t == 2:
        w = ((_YY + ph) // p + (_XX + ph) // p) % 2
    elif t == 3:
        w = ((_XX + _YY + ph) // (p / 2)) % 2
    elif t == 4:
        w = _YY > 60 + 2 * p + var.horizon
    else:
        w = np.asarray(Image.fromarray(var.blotches).resize((WIDTH, HEIGHT), Image.BILINEAR))
    w = w.astype(np.float32)[..., None]
    return cam.colours[0] * (1 - w) + cam.colours[1] * w


def _draw_person(img: np.ndarray, who: Identity, cam: CameraStyle, var: _Variation,
                 shift: tuple[float, float], zoom: float) -> None:
    """Paint ``who`` onto ``img`` in place. Canonical person: 120 units tall, centred at u = 0."""
    s = cam.scale * zoom * var.scale
    top = (HEIGHT - 120 * s) / 2 + cam.dy + var.dy + shift[1]
    cx = WIDTH / 2 + cam.dx + var.dx + shift[0]
    u = (_XX - cx) / s
    v = (_YY - top) / s
    du = var.stride * np.clip((v - 62) / 44, 0, 1)
    ul, ur = u + du, u - du  # legs swing in opposite directions
    colour = {part: palette[index] + var.jitter[part] for part, palette, index in (
        ("torso", TORSO_COLOURS, who.torso), ("trousers", TROUSER_COLOURS, who.trousers),
        ("skin", SKIN_COLOURS, who.skin), ("shoes", SHOE_COLOURS, who.shoes),
        ("bag", BAG_COLOURS, who.bag), ("hat", HAT_COLOURS, who.hat))}

    def box(x, u0, u1, v0, v1):
        return (x >= u0) & (x < u1) & (v >= v0) & (v < v1)

    legs = box(u, -12, 12, 60, 70) | box(ul, -12, -1, 60, 106) | box(ur, 1, 12, 60, 106)
    img[legs] = colour["trousers"]
    if STRIPES[who.stripes] != "none":
        light = TROUSER_COLOURS[who.trousers].mean() > 110
        stripe = np.array([40, 40, 40] if light else [230, 230, 230], np.float32) + var.jitter["stripes"]
        if STRIPES[who.stripes] == "vertical":
            img[box(ul, -12, -7, 64, 104) | box(ur, 7, 12, 64, 104)] = stripe
        else:
            img[legs & (v >= 82) & (v < 92)] = stripe
    img[box(ul, -13, -1, 105, 116) | box(ur, 1, 13, 105, 116)] = colour["shoes"]
    img[box(u + var.swing, -18, -13, 22, 56) | box(u - var.swing, 13, 18, 22, 56)] = colour["torso"] * 0.85
    img[box(u + var.swing, -18, -13, 56, 62) | box(u - var.swing, 13, 18, 56, 62)] = colour["skin"]
    img[box(u, -13, 13, 20, 61)] = colour["torso"]
    if who.bag:
        side_u = u * var.bag_side
        strap = (np.abs(side_u - (-10 + (v - 20) * 26 / 22)) < 1.6) & (v >= 20) & (v < 42)
        img[strap | box(side_u, 12, 23, 40, 64)] = colour["bag"]
    head = (u / 7) ** 2 + ((v - 12) / 9) ** 2 <= 1
    img[head] = colour["skin"]
    if who.hat:
        img[box(u, -9, 9, 1, 10) | box(u, -11, 11, 8, 11)] = colour["hat"]
    else:
        img[head & (v < 8)] = HAIR_COLOUR


def _occlude(img: np.ndarray, var: _Variation) -> None:
    _, pole, colour, fh, fw, fy, fx = var.occluder
    if pole:
        w = 8 + int(fw * 7)
        x = int(fx * (WIDTH - w + 1))
        img[:, x:x + w] = colour
    else:  # a block: a car, a bin, another person's back
        h, w = 28 + int(fh * 24), 24 + int(fw * (WIDTH - 23))
        y, x = 30 + int(fy * (HEIGHT - h - 29)), int(fx * (WIDTH - w + 1))
        img[y:y + h, x:x + w] = colour


def render(who: Identity | None, cam: CameraStyle, rng: np.random.Generator, *,
           shift: tuple[float, float] = (0.0, 0.0), zoom: float = 1.0, occlusion: float = 0.0) -> np.ndarray:
    """One (HEIGHT, WIDTH, 3) uint8 image of ``who`` (None: background only) seen by ``cam``."""
    var = _Variation.draw(rng, occlusion)
    img = _background(cam, var)
    if who is not None:
        _draw_person(img, who, cam, var, shift, zoom)
    if var.occluder[0]:
        _occlude(img, var)
    img = img * cam.gain * var.gain + var.noise
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class _Shot:
    """One image to render and where it goes."""

    folder: str  # bounding_box_train / query / bounding_box_test
    pid: int  # as written in the file name: -1 junk, 0 distractor
    identity: int  # index into the identity list; -1: nobody (background only)
    cam: int  # 0-based
    key: int  # seeds the image's generator
    shift: tuple[float, float] = (0.0, 0.0)
    zoom: float = 1.0


def _draw_range(rng: np.random.Generator, lo_hi: tuple[int, int]) -> int:
    return int(rng.integers(lo_hi[0], lo_hi[1] + 1))


def _folder_plan(name: str, size: SyntheticSize, num_cams: int, seed: int) -> tuple[list[Identity], list[_Shot]]:
    """Market/Duke: which identity is seen by which camera how often, and in which folder."""
    if size.min_cams > num_cams:
        raise AEAError(f"min_cams={size.min_cams} but {name} has {num_cams} cameras; lower min_cams")
    rng = np.random.default_rng(derive_seed(seed, _S_PLAN))
    n_train, n_test = size.train_ids, size.test_ids
    # Duke's distractors are identities seen only in the gallery (two images each); Market's are 0000_ images
    n = n_train + n_test + (-(-size.distractors // 2) if name == "dukemtmcreid" else 0)
    if n > 9999:
        raise AEAError(f"{n} identities do not fit 4-digit person ids; use fewer")
    identities = make_identities(n, seed)
    pids = [int(p) for p in rng.choice(np.arange(1, max(1501, 2 * n) + 1), size=n, replace=False)]
    shots: list[_Shot] = []

    def add(folder: str, pid: int, identity: int, cam: int, **kw) -> None:
        shots.append(_Shot(folder, pid, identity, int(cam), len(shots), **kw))

    def cameras(count: int) -> list[int]:
        return sorted(int(c) for c in rng.choice(num_cams, count, replace=False))

    camera_range = (size.min_cams, min(size.max_cams, num_cams))
    train, query, gallery = (SPLIT_FOLDERS[k] for k in ("train", "query", "gallery"))
    for i in range(n):
        if i < n_train:
            for cam in cameras(_draw_range(rng, camera_range)):
                for _ in range(_draw_range(rng, size.train_imgs_per_cam)):
                    add(train, pids[i], i, cam)
        elif i < n_train + n_test:
            for cam in cameras(_draw_range(rng, camera_range)):
                for k in range(_draw_range(rng, size.test_imgs_per_cam)):
                    add(query if k == 0 else gallery, pids[i], i, cam)
        else:
            for cam in cameras(2):
                add(gallery, pids[i], i, cam)
    if size.image_totals is not None:
        train_total, query_total, gallery_total = size.image_totals
        shots = _fit_totals(shots, rng, num_cams, (train_total, query_total, gallery_total - size.distractors))
    if name == "market1501":
        for _ in range(size.junk):  # badly cropped detections of test people: zero influence on the metrics
            side = rng.choice([-1.0, 1.0], size=2)
            add(gallery, -1, int(rng.integers(n_train, n_train + n_test)), rng.integers(num_cams),
                shift=(float(side[0] * rng.uniform(14, 22)), float(side[1] * rng.uniform(20, 36))))
        for _ in range(size.distractors):  # false detections: background, or a fragment of somebody
            who = int(rng.integers(n)) if rng.random() < 0.5 else -1
            add(gallery, 0, who, rng.integers(num_cams),
                shift=(float(rng.uniform(-24, 24)), float(rng.uniform(-40, 40))), zoom=float(rng.uniform(1.2, 1.6)))
    return identities, shots


def _fit_totals(shots: list[_Shot], rng: np.random.Generator, num_cams: int,
                totals: tuple[int, int, int]) -> list[_Shot]:
    """Shots nudged to exactly ``totals`` = (train, query, gallery of the test identities) images.

    Train: images added to or removed from random (identity, camera) cells, each keeping one. Query: a test
    identity gains a camera (its query and one gallery image) or loses one of its cameras, keeping two, so
    every query keeps a match in another camera. Gallery: images added to or removed from random test
    cells, each keeping one. Keys are renumbered afterwards (they seed the images).
    """
    train, query, gallery = (SPLIT_FOLDERS[k] for k in ("train", "query", "gallery"))
    cells: dict[tuple[str, int, int], list[_Shot]] = {}
    for shot in shots:
        cells.setdefault(("train" if shot.folder == train else "test", shot.identity, shot.cam), []).append(shot)

    def pick(keys: list) -> tuple:
        return keys[int(rng.integers(len(keys)))]

    def count(kind: str, folder: str) -> int:
        return sum(s.folder == folder for k, v in cells.items() if k[0] == kind for s in v)

    def like(shot: _Shot, folder: str, cam: int | None = None) -> _Shot:
        return _Shot(folder, shot.pid, shot.identity, shot.cam if cam is None else cam, -1)

    for kind, folder, target in (("train", train, totals[0]), ("test", query, totals[1]),
                                 ("test", gallery, totals[2])):
        diff = target - count(kind, folder)
        keys = sorted(k for k in cells if k[0] == kind)
        cams: dict[int, list[int]] = {}
        for _, identity, cam in keys:
            cams.setdefault(identity, []).append(cam)
        while diff > 0 and folder == query:  # a test identity seen by one more camera
            identity = pick(sorted(i for i, c in cams.items() if len(c) < num_cams))
            cam = pick(sorted(set(range(num_cams)) - set(cams[identity])))
            first = cells[("test", identity, cams[identity][0])][0]
            cells[("test", identity, cam)] = [like(first, query, cam), like(first, gallery, cam)]
            cams[identity].append(cam)
            diff -= 1
        identities = sorted(cams)
        while diff < 0 and folder == query:  # ... or by one fewer, keeping two
            identity = pick(identities)
            if len(cams[identity]) <= 2:
                continue
            cam = pick(sorted(cams[identity]))
            del cells[("test", identity, cam)]
            cams[identity].remove(cam)
            diff += 1
        while diff > 0:
            key = pick(keys)
            cells[key].append(like(cells[key][0], folder))
            diff -= 1
        while diff < 0:
            members = cells[pick(keys)]
            if sum(s.folder == folder for s in members) > 1:
                members.pop(max(i for i, s in enumerate(members) if s.folder == folder))
                diff += 1
    fitted = [s for k in sorted(cells) for s in cells[k]]
    return [_Shot(s.folder, s.pid, s.identity, s.cam, key, s.shift, s.zoom) for key, s in enumerate(fitted)]


def _folder_names(name: str, shots: list[_Shot], num_cams: int, seed: int) -> list[str]:
    """Release-style file names; frame numbers grow per camera so names are unique."""
    rng = np.random.default_rng(derive_seed(seed, _S_PLAN, 1))
    frame = rng.integers(50, 500, size=num_cams)
    names = []
    for s in shots:
        frame[s.cam] += rng.integers(3, 60)
        pid = "-1" if s.pid == -1 else f"{s.pid:04d}"
        if name == "market1501":
            names.append(f"{pid}_c{s.cam + 1}s{rng.integers(1, 7)}_{frame[s.cam]:06d}_{rng.integers(0, 8):02d}.jpg")
        else:
            names.append(f"{pid}_c{s.cam + 1}_f{frame[s.cam]:07d}.jpg")
    return names


def _counts(train: int, train_ids: int, query: int, query_ids: int, gallery: int, junk: int) -> dict[str, int]:
    values = (train, train_ids, query, query_ids, gallery, junk)
    return dict(zip(COUNT_KEYS, (int(v) for v in values)))


def _write_folder_dataset(name: str, out: Path, size: SyntheticSize, seed: int) -> dict[str, dict[str, int]]:
    num_cams = NUM_CAMS[name]
    identities, shots = _folder_plan(name, size, num_cams, seed)
    names = _folder_names(name, shots, num_cams, seed)
    cams = camera_styles(num_cams, seed)
    for folder in SPLIT_FOLDERS.values():
        (out / folder).mkdir(parents=True)
    progress = tqdm(list(zip(shots, names)), desc=f"generating {name}", unit="img", leave=False, disable=None)
    for shot, file_name in progress:
        rng = np.random.default_rng(derive_seed(seed, _S_IMAGE, shot.key))
        who = identities[shot.identity] if shot.identity >= 0 else None
        img = render(who, cams[shot.cam], rng, shift=shot.shift, zoom=shot.zoom, occlusion=size.occlusion)
        Image.fromarray(img).save(out / shot.folder / file_name, format="JPEG", quality=90)
    by_folder = {f: [s for s in shots if s.folder == f] for f in SPLIT_FOLDERS.values()}
    gallery = by_folder[SPLIT_FOLDERS["gallery"]]
    return {name: _counts(len(by_folder[SPLIT_FOLDERS["train"]]), size.train_ids,
                          len(by_folder[SPLIT_FOLDERS["query"]]), size.test_ids,
                          sum(s.pid != -1 for s in gallery), sum(s.pid == -1 for s in gallery))}


# ----------------------------------------------------------------------------- CUHK03

# share of identities per camera pair in the real release (843, 440, 77, 58, 49 of 1,467)
_CUHK03_PAIR_SHARE = np.array([843, 440, 77, 58, 49], dtype=np.float64) / 1467
_MAT73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2015 HDF5 schema 1.00 ."
_MAT5_HEADER = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2015"
FULL = "full"  # the CUHK03 size made from the real protocol configs
NUM_TESTSETS, TESTSET_IDS = 20, 100  # cuhk-03.mat's classic protocol: 20 test sets of 100 identities
# The protocol configs' variables in the real files' order, and the integer type the real files store each
# MATLAB double in (MATLAB saves integral doubles with a smaller integer type; loadmat returns that type).
PROTOCOL_STORAGE: dict[str, type | None] = {"camId": np.uint8, "filelist": None, "labels": np.uint16,
                                            "query_idx": np.uint16, "gallery_idx": np.uint16,
                                            "train_idx": np.uint16}
# MAT v5 data types (mi*) and array classes (mx*)
_MI_INT8, _MI_UINT8, _MI_UINT16, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED, _MI_UTF8 = 1, 2, 4, 5, 6, 14, 15, 16
_MX_CELL, _MX_CHAR, _MX_DOUBLE = 1, 4, 6
_MI_OF = {np.dtype(np.uint8): _MI_UINT8, np.dtype(np.uint16): _MI_UINT16}


@dataclass(frozen=True)
class _Cuhk03Person:
    label: int  # 1-based, over camera pairs in order (the protocol's ``labels``)
    pair: int  # 0-based camera pair
    index: int  # 1-based index within the pair (row of the pair's cell)
    test: bool
    columns: Mapping[str, tuple[int, ...]]  # setting -> filled cell columns (0-4 view 1, 5-9 view 2)


def _cuhk03_plan(size: SyntheticSize, seed: int) -> list[_Cuhk03Person]:
    n = size.train_ids + size.test_ids
    if n < len(_CUHK03_PAIR_SHARE):
        raise AEAError(f"CUHK03 needs at least {len(_CUHK03_PAIR_SHARE)} identities (one per camera pair); got {n}")
    rng = np.random.default_rng(derive_seed(seed, _S_PLAN))
    pairs = np.sort(np.concatenate([np.arange(5), rng.choice(5, size=n - 5, p=_CUHK03_PAIR_SHARE)]))
    test = set(int(i) for i in rng.choice(n, size=size.test_ids, replace=False))
    people, seen = [], [0] * 5
    for i, pair in enumerate(pairs):
        seen[pair] += 1
        per_view = size.test_imgs_per_cam if i in test else size.train_imgs_per_cam
        labeled, detected = [], []
        for view in (0, 1):
            cols = [5 * view + k for k in range(min(5, _draw_range(rng, per_view)))]
            labeled += cols
            # the detector misses a few training boxes (never the last of a view, never a test person's)
            detected += cols if i in test else ([c for c in cols if rng.random() >= 0.02] or cols[:1])
        people.append(_Cuhk03Person(i + 1, int(pair), seen[pair], i in test,
                                    {"labeled": tuple(labeled), "detected": tuple(detected)}))
    return people


def _cuhk03_plan_from_protocols(splits: Mapping[str, Mapping[str, np.ndarray]]) -> list[_Cuhk03Person]:
    """The people behind existing protocol configs (the real ones), so images can be made for their file lists.

    A person is a label: its file names give its camera pair, its row in the
    pair's cell and its filled columns; it is a test person when no setting
    trains on it.
    """
    where: dict[int, tuple[int, int]] = {}
    columns: dict[str, dict[int, list[int]]] = {s: {} for s in splits}
    trained: set[int] = set()
    for setting, split in splits.items():
        for name, label in zip(split["filelist"], split["labels"].tolist()):
            match = CUHK03_FILE_NAME.fullmatch(name)
            if match is None:
                raise AEAError(f"the {setting} protocol lists {name!r}, not campair_pid_view_index.png; "
                               "use the original protocol configs")
            if where.setdefault(label, (int(match[1]), int(match[2]))) != (int(match[1]), int(match[2])):
                raise AEAError(f"the {setting} protocol gives label {label} to two people (at {name}); "
                               "use the original protocol configs")
            columns[setting].setdefault(label, []).append(int(match[4]) - 1)
        trained.update(split["labels"][split["train"]].tolist())
    labels = sorted(where)
    if labels != list(range(1, len(labels) + 1)):
        raise AEAError("the protocol configs' labels are not 1..N; use the original protocol configs")
    return [_Cuhk03Person(label, where[label][0] - 1, where[label][1], label not in trained,
                          {s: tuple(sorted(columns[s].get(label, ()))) for s in splits}) for label in labels]


_Painter = Callable[[str, _Cuhk03Person, int], np.ndarray]  # (setting, person, cell column) -> H x W x 3 image


def _cuhk03_painter(people: list[_Cuhk03Person], occlusion: float, seed: int) -> _Painter:
    """Images on demand (a full-size release does not fit in memory). Detected boxes are shifted,
    rescaled and cropped renderings of the labeled image's very scene."""
    identities = make_identities(len(people), seed)
    cams = camera_styles(10, seed)  # camera 2 * pair + view

    def paint(setting: str, p: _Cuhk03Person, col: int) -> np.ndarray:
        args = (identities[p.label - 1], cams[2 * p.pair + col // 5])
        scene = np.random.default_rng(derive_seed(seed, _S_IMAGE, p.label, col))
        if setting == "labeled":
            return render(*args, scene, occlusion=occlusion)
        box = np.random.default_rng(derive_seed(seed, _S_DETECTED, p.label, col))
        img = render(*args, scene, occlusion=occlusion, shift=(float(box.uniform(-5, 5)), float(box.uniform(-6, 6))),
                     zoom=float(box.uniform(0.92, 1.08)))
        top, bottom, left, right = (box.integers(0, 13), box.integers(0, 9), box.integers(0, 6), box.integers(0, 6))
        return img[top:HEIGHT - bottom, left:WIDTH - right]

    return paint


def _cuhk03_name(p: _Cuhk03Person, col: int) -> str:
    """The protocol's file naming: campair_pid_view_imageindex.png (1-based)."""
    return f"{p.pair + 1}_{p.index:03d}_{col // 5 + 1}_{col + 1:02d}.png"


def _cuhk03_protocol(people: list[_Cuhk03Person], setting: str, seed: int) -> dict[str, np.ndarray]:
    """The variables of cuhk03_new_protocol_config_<setting>.mat in the real files' order, shapes and
    storage types (as scipy.io.loadmat returns them): one query per test person and view."""
    rng = np.random.default_rng(derive_seed(seed, _S_PLAN, 2 + CUHK03_SETTINGS.index(setting)))
    files, labels, cam_ids, train, query, gallery = [], [], [], [], [], []
    for p in people:
        first = len(files) + 1
        for col in p.columns[setting]:
            files.append(_cuhk03_name(p, col))
            labels.append(p.label)
            cam_ids.append(col // 5 + 1)
        entries = list(range(first, len(files) + 1))
        if not p.test:
            train += entries
            continue
        for view in (1, 2):
            in_view = [e for e in entries if cam_ids[e - 1] == view]
            pick = in_view[int(rng.integers(len(in_view)))]
            query.append(pick)
            gallery += [e for e in in_view if e != pick]
    if len(files) > np.iinfo(np.uint16).max:
        raise AEAError(f"{len(files)} CUHK03 images do not fit the protocol's uint16 indices; use fewer")
    filelist = np.empty((len(files), 1), dtype=object)
    filelist[:, 0] = files
    fields = {"camId": cam_ids, "filelist": filelist, "labels": labels, "query_idx": query, "gallery_idx": gallery,
              "train_idx": train}
    return {k: v if PROTOCOL_STORAGE[k] is None else np.asarray(v, dtype=PROTOCOL_STORAGE[k]).reshape(-1, 1)
            for k, v in fields.items()}


def _mat5_element(mi: int, payload: bytes) -> bytes:
    """A MAT v5 data element: its 8-byte tag, then the payload padded to a multiple of 8 bytes."""
    return struct.pack("<II", mi, len(payload)) + payload + bytes(-len(payload) % 8)


def _mat5_array(mx_class: int, shape: tuple[int, ...], name: str, data: bytes) -> bytes:
    flags = _mat5_element(_MI_UINT32, struct.pack("<II", mx_class, 0))
    dims = _mat5_element(_MI_INT32, struct.pack(f"<{len(shape)}i", *shape))
    return _mat5_element(_MI_MATRIX, flags + dims + _mat5_element(_MI_INT8, name.encode()) + data)


def protocol_mat_bytes(fields: Mapping[str, np.ndarray]) -> bytes:
    """A protocol config as MATLAB's ``save`` writes the real ones (scipy.io.savemat cannot): each variable
    compressed; numbers are doubles stored with their array's integer type; filelist a cell of 1 x n char
    rows in UTF-8. The header text is fixed so that bytes repeat."""
    out = [_MAT5_HEADER.ljust(116) + bytes(8) + struct.pack("<H", 0x0100) + b"IM"]
    for name, values in fields.items():
        if values.dtype == object:
            rows = [mat_string(v) for v in values.ravel(order="F")]  # str, or loadmat's 1-element arrays
            data = b"".join(_mat5_array(_MX_CHAR, (1, len(r)), "", _mat5_element(_MI_UTF8, r.encode()))
                            for r in rows)
            array = _mat5_array(_MX_CELL, values.shape, name, data)
        else:
            array = _mat5_array(_MX_DOUBLE, values.shape, name,
                                _mat5_element(_MI_OF[values.dtype], values.tobytes(order="F")))
        packed = zlib.compress(array)
        out.append(struct.pack("<II", _MI_COMPRESSED, len(packed)) + packed)  # compressed elements are not padded
    return b"".join(out)


def _cuhk03_testsets(people: list[_Cuhk03Person], seed: int) -> list[np.ndarray]:
    """cuhk-03.mat's ``testsets``: 20 sets of rows [camera pair, row in the pair] (1-based doubles), of 100
    identities each (all of them when there are fewer). Drawn at random: these are not the release's sets."""
    rng = np.random.default_rng(derive_seed(seed, _S_TESTSETS))
    size = min(TESTSET_IDS, len(people))
    chosen = [np.sort(rng.choice(len(people), size, replace=False)) for _ in range(NUM_TESTSETS)]
    return [np.array([[people[i].pair + 1, people[i].index] for i in rows], dtype=np.float64) for rows in chosen]


def _matlab_names() -> Iterator[str]:
    """a, b, ..., z, ba, bb, ...: the dataset names MATLAB gives cells' contents in ``#refs#``."""
    n = 0
    while True:
        digits, k = "", n
        while True:
            digits = chr(ord("a") + k % 26) + digits
            k //= 26
            if k == 0:
                break
        yield digits
        n += 1


def _write_cuhk03_mat(path: Path, people: list[_Cuhk03Person], paint: _Painter, testsets: list[np.ndarray]) -> None:
    """cuhk-03.mat as MATLAB -v7.3 writes it: HDF5, cells as object references, arrays stored transposed.

    MATLAB is column-major, so an H x W x 3 image is stored as an HDF5 (3, W, H)
    dataset, a num_ids x 10 cell as (10, num_ids), the 5 x 1 cells of camera
    pairs as (1, 5), the 20 x 1 ``testsets`` as (1, 20) and each 100 x 2 test
    set as (2, 100); an empty cell entry is MATLAB's empty double: uint64
    [0, 0] with attribute MATLAB_empty = 1.
    """
    names = _matlab_names()
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")

        def put(data: np.ndarray, matlab_class: str, empty: bool = False) -> h5py.Reference:
            ds = refs.create_dataset(next(names), data=data, track_times=False)
            ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            if empty:
                ds.attrs["MATLAB_empty"] = np.uint8(1)
            return ds.ref

        def top_level_cell(name: str, entries: list[h5py.Reference]) -> None:
            ds = f.create_dataset(name, data=np.array([entries], dtype=h5py.ref_dtype), track_times=False)
            ds.attrs["MATLAB_class"] = np.bytes_("cell")

        empty = np.zeros(2, dtype=np.uint64)
        total = sum(len(p.columns[s]) for p in people for s in CUHK03_SETTINGS)
        with tqdm(total=total, desc="generating cuhk-03.mat", unit="img", leave=False, disable=None) as bar:
            for setting in CUHK03_SETTINGS:
                pair_cells = []
                for pair in range(5):
                    rows = {p.index: p for p in people if p.pair == pair}
                    cell = np.empty((10, max(rows, default=0)), dtype=h5py.ref_dtype)
                    for row in range(cell.shape[1]):
                        p = rows.get(row + 1)
                        for col in range(10):
                            if p is None or col not in p.columns[setting]:
                                cell[col, row] = put(empty, "double", empty=True)
                                continue
                            cell[col, row] = put(paint(setting, p, col).transpose(2, 1, 0), "uint8")
                            bar.update()
                    pair_cells.append(put(cell, "cell"))
                top_level_cell(setting, pair_cells)
        top_level_cell("testsets", [put(rows.T, "double") for rows in testsets])
    header = _MAT73_HEADER.ljust(116) + b" " * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header)


def _cuhk03_counts(splits: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, int]]:
    counts = {}
    for s, split in splits.items():
        ids = {k: len(set(split["labels"][split[k]].tolist())) for k in ("train", "query")}
        counts[f"cuhk03-{s}"] = _counts(len(split["train"]), ids["train"], len(split["query"]), ids["query"],
                                        len(split["gallery"]), 0)
    return counts


@dataclass(frozen=True)
class _Cuhk03Release:
    """What one CUHK03 generation writes: its people, the protocol configs' bytes and what they parse to."""

    people: list[_Cuhk03Person]
    configs: Mapping[str, bytes]  # setting -> cuhk03_new_protocol_config_<setting>.mat
    splits: Mapping[str, Mapping[str, np.ndarray]]  # setting -> aea.data.datasets.read_protocol's fields
    occlusion: float


def _generated_cuhk03(size: SyntheticSize, seed: int) -> _Cuhk03Release:
    people = _cuhk03_plan(size, seed)
    configs = {s: protocol_mat_bytes(_cuhk03_protocol(people, s, seed)) for s in CUHK03_SETTINGS}
    splits = {s: protocol_split(scipy.io.loadmat(io.BytesIO(configs[s])), Path(cuhk03_config_name(s)))
              for s in CUHK03_SETTINGS}
    return _Cuhk03Release(people, configs, splits, size.occlusion)


def _full_cuhk03(protocol_dir: Path) -> _Cuhk03Release:
    """Images for exactly the file lists of the real protocol configs, which are kept byte for byte."""
    paths = {s: protocol_dir / cuhk03_config_name(s) for s in CUHK03_SETTINGS}
    for path in paths.values():
        if not path.is_file():
            raise AEAError(f"{path} is missing; the full-size CUHK03 is built from the real protocol configs "
                           "(zhunzhong07/person-re-ranking, evaluation/data/CUHK03; "
                           "the repository has a copy in tests/data/real_cuhk03)")
    splits = {s: read_protocol(paths[s]) for s in CUHK03_SETTINGS}
    return _Cuhk03Release(_cuhk03_plan_from_protocols(splits), {s: paths[s].read_bytes() for s in CUHK03_SETTINGS},
                          splits, DEFAULT_OCCLUSION)


def _write_cuhk03(layout: str, out: Path, release: _Cuhk03Release, seed: int) -> dict[str, dict[str, int]]:
    """``mat``: out/cuhk-03.mat + out/<config>.mat (moved to the root later); ``np``: out/<setting>/<split folders>."""
    paint = _cuhk03_painter(release.people, release.occlusion, seed)
    if layout == "mat":
        _write_cuhk03_mat(out / CUHK03_MAT, release.people, paint, _cuhk03_testsets(release.people, seed))
        for s in CUHK03_SETTINGS:
            (out / cuhk03_config_name(s)).write_bytes(release.configs[s])
        return _cuhk03_counts(release.splits)
    by_name = {_cuhk03_name(p, col): (p, col) for p in release.people for s in CUHK03_SETTINGS for col in p.columns[s]}
    for s in CUHK03_SETTINGS:
        split = release.splits[s]
        for key, folder in SPLIT_FOLDERS.items():
            (out / s / folder).mkdir(parents=True)
            for i in tqdm(split[key], desc=f"generating cuhk03-np {s} {folder}", unit="img", leave=False,
                          disable=None):
                p, col = by_name[split["filelist"][i]]
                np_name = f"{p.label:04d}_c{col // 5 + 1}_{col + 1}.png"
                Image.fromarray(paint(s, p, col)).save(out / s / folder / np_name, format="PNG")
    return _cuhk03_counts(release.splits)


# ----------------------------------------------------------------------------- entry point


def make_synthetic(name: str, root: str | os.PathLike, *,
                   size: str | SyntheticSize | Mapping[str, object] = "smoke", seed: int = 0,
                   layout: str = "mat", protocol_dir: str | os.PathLike | None = None) -> Path:
    """Generate dataset ``name`` under data root ``root`` in the release's on-disk layout; return its directory.

    ``name``: market1501, dukemtmcreid, or cuhk03-labeled / cuhk03-detected /
    cuhk03 (one generation serves both CUHK03 settings).  ``layout`` (CUHK03
    only): "mat" writes cuhk03_release/cuhk-03.mat plus the two protocol
    configs at the root; "np" writes the CUHK03-NP folders (cuhk03-np/).
    ``size`` "full" (CUHK03 only) makes images for exactly the file lists of
    the real protocol configs in ``protocol_dir`` and keeps those configs byte
    for byte, so the release has the official counts.
    The directory is built beside its final place and renamed into it, with
    the marker file ``aea_synthetic.json`` (parameters and counts the parser
    validates against).  Calling again with the same parameters is a no-op; a
    directory without the marker (a real dataset) is never overwritten.
    """
    root = Path(root)
    family = "cuhk03" if name.startswith("cuhk03") else name
    if family not in ("market1501", "dukemtmcreid", "cuhk03"):
        raise AEAError(f"unknown dataset {name!r}; choose market1501, dukemtmcreid, cuhk03-labeled or cuhk03-detected")
    if layout not in ("mat", "np") or (layout == "np" and family != "cuhk03"):
        raise AEAError(f"layout {layout!r} is not available for {name}; use 'mat' or (CUHK03 only) 'np'")
    if (size == FULL) != (protocol_dir is not None):
        raise AEAError("the full size is built from the real protocol configs: give size full together with "
                       "--protocol-dir DIR (a copy is in tests/data/real_cuhk03), and no --protocol-dir otherwise")
    release: _Cuhk03Release | None = None
    if size == FULL:
        if family != "cuhk03":
            raise AEAError(f"size 'full' exists for CUHK03 only (made from the real protocol configs); "
                           f"use smoke or tiny for {name}")
        release = _full_cuhk03(Path(protocol_dir))
        size_params: object = {FULL: {s: hashlib.sha256(release.configs[s]).hexdigest() for s in CUHK03_SETTINGS}}
    else:
        spec = resolve_size(size)
        size_params = dataclasses.asdict(spec)
    target = root / {"market1501": MARKET_DIR, "dukemtmcreid": DUKE_DIR,
                     "cuhk03": CUHK03_RELEASE_DIR if layout == "mat" else CUHK03_NP_DIR}[family]
    outside = [root / cuhk03_config_name(s) for s in CUHK03_SETTINGS] if target.name == CUHK03_RELEASE_DIR else []
    params = {"generator_version": GENERATOR_VERSION, "dataset": family, "layout": layout,
              "size": size_params, "seed": int(seed)}
    sweep_temp_dirs(target)  # the folder of a generation killed before its rename
    marker = target / MARKER_NAME
    if marker.is_file():
        if read_json(marker).get("params") == json.loads(json.dumps(params)) and all(p.is_file() for p in outside):
            log.info("%s already generated with these parameters at %s", family, target)
            return target
    elif target.exists() or any(p.exists() for p in outside):
        raise AEAError(f"{target} exists and is not a generated dataset (no {MARKER_NAME}); "
                       "use another data root for generated data")
    root.mkdir(parents=True, exist_ok=True)
    log.info("generating %s (size %s, seed %d) at %s", family, size if isinstance(size, str) else spec, seed, target)
    tmp = temp_dir_beside(target)
    try:
        if family == "cuhk03":
            counts = _write_cuhk03(layout, tmp, release or _generated_cuhk03(spec, seed), seed)
        else:
            counts = _write_folder_dataset(family, tmp, spec, seed)
        write_json(tmp / MARKER_NAME, {"params": params, "counts": counts})
        refuse_foreign_entries(target, {entry.name for entry in tmp.iterdir()} | set(CUHK03_IMAGES.values()),
                               f"or generate into another data root (--root) than {root}")
        for path in outside:
            os.replace(tmp / path.name, path)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
