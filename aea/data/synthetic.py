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
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from aea.data.families import FAMILIES, family_of
from aea.data.families.base import COUNT_KEYS, MARKER_NAME
from aea.data.families.folders import SPLIT_FOLDERS, FolderFamily
from aea.errors import AEAError
from aea.io import read_json, refuse_foreign_entries, sweep_temp_dirs, temp_dir_beside, write_json
from aea.seeding import derive_seed

log = logging.getLogger(__name__)

HEIGHT, WIDTH = 128, 64
GENERATOR_VERSION = 2  # 2: CUHK03 files in the real ones' form (storage types, testsets)
DEFAULT_OCCLUSION = 0.15
FULL = "full"  # the size made from a release's real file lists (CUHK03's protocol configs)


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
    """A release in Market-1501's layout (``name``: its family, aea.data.families.folders.FolderFamily): which
    identity is seen by which camera how often, and in which folder."""
    family = _folder_family(name)
    if size.min_cams > num_cams:
        raise AEAError(f"min_cams={size.min_cams} but {name} has {num_cams} cameras; lower min_cams")
    rng = np.random.default_rng(derive_seed(seed, _S_PLAN))
    n_train, n_test = size.train_ids, size.test_ids
    # distractors: identities seen only in the gallery, two images each (Duke's), or 0000_ images (Market's)
    n = n_train + n_test + (-(-size.distractors // 2) if family.distractors == "identities" else 0)
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
    if family.junk:
        for _ in range(size.junk):  # badly cropped detections of test people: zero influence on the metrics
            side = rng.choice([-1.0, 1.0], size=2)
            add(gallery, -1, int(rng.integers(n_train, n_train + n_test)), rng.integers(num_cams),
                shift=(float(side[0] * rng.uniform(14, 22)), float(side[1] * rng.uniform(20, 36))))
    if family.distractors == "images":
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
    """Release-style file names (the family's ``file_name``); frame numbers grow per camera so names are unique."""
    file_name = _folder_family(name).file_name
    rng = np.random.default_rng(derive_seed(seed, _S_PLAN, 1))
    frame = rng.integers(50, 500, size=num_cams)
    names = []
    for s in shots:
        frame[s.cam] += rng.integers(3, 60)
        pid = "-1" if s.pid == -1 else f"{s.pid:04d}"
        names.append(file_name(pid, s.cam + 1, frame[s.cam], rng))
    return names


def _counts(train: int, train_ids: int, query: int, query_ids: int, gallery: int, junk: int) -> dict[str, int]:
    values = (train, train_ids, query, query_ids, gallery, junk)
    return dict(zip(COUNT_KEYS, (int(v) for v in values)))


def _folder_family(name: str) -> FolderFamily:
    family = family_of(name)
    if not isinstance(family, FolderFamily):
        raise AEAError(f"{name} is not a release in Market-1501's layout")
    return family


_IMAGE_FORMATS = {".jpg": ("JPEG", {"quality": 90}), ".jpeg": ("JPEG", {"quality": 90}), ".png": ("PNG", {})}


def write_folder_release(family: FolderFamily, out: Path, size: SyntheticSize, seed: int) -> dict[str, dict[str, int]]:
    """A generated release in Market-1501's layout in ``out`` (``FolderFamily.generate``); its setting's counts."""
    name, num_cams = family.name, family.setting.cameras
    if family.names.suffix.lower() not in _IMAGE_FORMATS:
        raise AEAError(f"{name}: the generator writes {', '.join(_IMAGE_FORMATS)} images, not {family.names.suffix}")
    image_format, options = _IMAGE_FORMATS[family.names.suffix.lower()]
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
        Image.fromarray(img).save(out / shot.folder / file_name, format=image_format, **options)
    by_folder = {f: [s for s in shots if s.folder == f] for f in SPLIT_FOLDERS.values()}
    gallery = by_folder[SPLIT_FOLDERS["gallery"]]
    return {name: _counts(len(by_folder[SPLIT_FOLDERS["train"]]), size.train_ids,
                          len(by_folder[SPLIT_FOLDERS["query"]]), size.test_ids,
                          sum(s.pid != -1 for s in gallery), sum(s.pid == -1 for s in gallery))}


# ----------------------------------------------------------------------------- entry point


def make_synthetic(name: str, root: str | os.PathLike, *,
                   size: str | SyntheticSize | Mapping[str, object] = "smoke", seed: int = 0,
                   layout: str = "mat", protocol_dir: str | os.PathLike | None = None) -> Path:
    """Generate dataset ``name`` under data root ``root`` in the release's on-disk layout; return its directory.

    ``name``: a setting of ``aea.names.DATASETS`` or a family's name (``aea.data.families``; ``cuhk03``: one
    generation serves both CUHK03 settings), which writes the whole release.  ``layout``: one of the family's
    (CUHK03: "mat" writes cuhk03_release/cuhk-03.mat plus the two protocol configs at the root; "np" writes the
    CUHK03-NP folders, cuhk03-np/).  ``size`` "full" (CUHK03 only) makes images for exactly the file lists of
    the real protocol configs in ``protocol_dir`` and keeps those configs byte for byte, so the release has
    the official counts.
    The directory is built beside its final place and renamed into it, with
    the marker file ``aea_synthetic.json`` (parameters and counts the parser
    validates against).  Calling again with the same parameters is a no-op; a
    directory without the marker (a real dataset) is never overwritten.
    """
    root = Path(root)
    family = family_of(name)
    if layout not in family.layouts:
        raise AEAError(f"layout {layout!r} is not available for {name}; use {' or '.join(map(repr, family.layouts))}")
    if (size == FULL) != (protocol_dir is not None):
        raise AEAError("the full size is built from the real protocol configs: give size full together with "
                       "--protocol-dir DIR (a copy is in tests/data/real_cuhk03), and no --protocol-dir otherwise")
    full, spec = None, None
    if size == FULL:
        if not family.has_full_size:
            having = " and ".join(f.title for f in FAMILIES if f.has_full_size)
            raise AEAError(f"size 'full' exists for {having} only (made from the real protocol configs); "
                           f"use smoke or tiny for {name}")
        size_params, full = family.full_size(Path(protocol_dir))
    else:
        spec = resolve_size(size)
        size_params = dataclasses.asdict(spec)
    target = root / family.release_dir(layout)
    outside = [root / file for file in family.root_files(layout)]
    params = {"generator_version": GENERATOR_VERSION, "dataset": family.name, "layout": layout,
              "size": size_params, "seed": int(seed)}
    sweep_temp_dirs(target)  # the folder of a generation killed before its rename
    marker = target / MARKER_NAME
    if marker.is_file():
        if read_json(marker).get("params") == json.loads(json.dumps(params)) and all(p.is_file() for p in outside):
            log.info("%s already generated with these parameters at %s", family.name, target)
            return target
    elif target.exists() or any(p.exists() for p in outside):
        raise AEAError(f"{target} exists and is not a generated dataset (no {MARKER_NAME}); "
                       "use another data root for generated data")
    root.mkdir(parents=True, exist_ok=True)
    log.info("generating %s (size %s, seed %d) at %s", family.name, size if isinstance(size, str) else spec, seed,
             target)
    tmp = temp_dir_beside(target)
    try:
        counts = family.generate(tmp, layout, spec, seed, full)
        write_json(tmp / MARKER_NAME, {"params": params, "counts": counts})
        refuse_foreign_entries(target, {entry.name for entry in tmp.iterdir()} | set(family.derived_entries()),
                               f"or generate into another data root (--root) than {root}")
        for path in outside:
            os.replace(tmp / path.name, path)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
