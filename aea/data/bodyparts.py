"""Generator versions 2 and 3: pedestrians identified by five body regions, with part labels (docs/mechanism.md).

Every identity is coded independently in five regions (head: hair colour x
headwear; upper body: colour x pattern; lower body: colour x style; shoes:
colour; carried item: type, side, colour).  In the ``redundant`` variant each
region identifies; in ``single-cue`` only the upper body (the designed salient
region) does and the others are drawn afresh for every image.  At test time one
region of a query or gallery image is hidden by an occluder with probability p.

The data set is written in the Market-1501 release layout through version 1's
plan, naming and camera helpers (``aea.data.synthetic``), so the unchanged
parser reads it.  Beside the release, outside its layout, every image has a
part-label PNG (``<release>.parts/<same path>.png``, ids of
``aea.mechanism.LABELS``).  Each image's randomness is split into independent
streams (scene, single-cue look, test-time occlusion), so the same generator
seed gives the same scene in both variants and at every p, apart from what the
variant or the occluder changes.

Version 3 (docs/mechanism.md, "Generator version 3") draws the same scenes as version 2 from the same seed;
only the test-time occlusion differs: ``occluded_region`` fixes the region an occluded image hides (``upper``:
the torso itself), where version 2 (``any``) draws it uniformly among the regions the image shows.  An image is
occluded iff the same uniform number u < p as in version 2, so at one seed the images occluded at p = 0.2 are a
subset of those at p = 0.4 in either version.  Version 2 data are made exactly as before (``version=2``, the
default).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from aea.data import synthetic
from aea.data.datasets import MARKER_NAME, MARKET_DIR, NUM_CAMS, SPLIT_FOLDERS
from aea.data.synthetic import HEIGHT, WIDTH, CameraStyle, SyntheticSize, camera_styles, resolve_size
from aea.errors import AEAError
from aea.io import read_json, refuse_foreign_entries, sweep_temp_dirs, temp_dir_beside, write_json
from aea.mechanism import LABELS, REGIONS, SALIENT_REGION, constraint_report
from aea.seeding import derive_seed

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # the default version of make_mechanism (the registered version-2 experiment)
GENERATOR_VERSIONS = (2, 3)
OCCLUDED_REGIONS = ("any", *REGIONS)  # version 3: which region an occluded test image hides; "any" as version 2
VARIANTS = ("redundant", "single-cue")
PARTS_SUFFIX = ".parts"
IMAGES_NAME = "images.json"  # in the parts folder: every image's look, camera and occluded region
DATASET = "market1501"

MECHANISM_SIZES: dict[str, SyntheticSize] = {
    # the mechanism profile: ~480 training images, ~160 queries, ~240 gallery images
    "smoke": SyntheticSize(train_ids=64, test_ids=64, min_cams=2, max_cams=3, train_imgs_per_cam=(2, 4),
                           test_imgs_per_cam=(2, 3), distractors=0, junk=0, occlusion=0.0),
    # tests: a second or two
    "tiny": SyntheticSize(train_ids=16, test_ids=16, min_cams=2, max_cams=2, train_imgs_per_cam=(1, 2),
                          test_imgs_per_cam=(2, 2), distractors=0, junk=0, occlusion=0.0),
}

# ----------------------------------------------------------------------------- region palettes

HAIR_COLOURS = np.array([[30, 25, 20], [105, 62, 30], [225, 195, 115], [175, 70, 30], [165, 165, 165],
                         [240, 240, 235]], dtype=np.float32)
HEADWEAR = ("none", "cap", "beanie", "headband")
HEADWEAR_COLOURS = np.array([[0, 0, 0], [30, 35, 110], [200, 40, 40], [235, 235, 235]], dtype=np.float32)
UPPER_COLOURS = np.array([[200, 40, 40], [40, 70, 190], [40, 150, 60], [225, 200, 50], [230, 230, 230],
                          [35, 35, 35], [130, 50, 150], [230, 130, 40], [235, 145, 185], [50, 180, 200],
                          [120, 75, 40], [130, 130, 130]], dtype=np.float32)
UPPER_SHAPES = ("hstripes", "vstripes", "band", "grid", "yoke")  # left-right symmetric: flipping keeps them
UPPER_SHADES = ("dark", "light")
# a pattern's shade: the colour scaled by DARK_SHADE, or moved LIGHT_SHADE of the way to white (high contrast,
# calibrated for C3 like LOWER_CONTRAST)
DARK_SHADE, LIGHT_SHADE = 0.15, 0.85
NUM_PATTERNS = 1 + len(UPPER_SHAPES) * len(UPPER_SHADES)  # 0: plain
# Contrast of the lower body (and of the upper-body patterns below) set by calibration (docs/mechanism.md,
# "Calibration log"): with full-contrast lower garments Baseline 1's attention went to the legs and the background
# more than to the torso (C3 failed). The garments' colours (navy, black, grey, beige, brown, green) are pulled 40%
# of the way to mid grey; spread apart first, so that the closest two stay 56 apart (RGB distance).
LOWER_CONTRAST = 0.6
LOWER_COLOURS = (128 + LOWER_CONTRAST * (np.array([[40, 55, 120], [30, 30, 30], [125, 125, 125], [205, 180, 130],
                                                   [120, 60, 30], [55, 135, 60]], dtype=np.float32) - 128))
LOWER_STYLES = ("trousers", "shorts", "skirt")
SHOE_COLOURS = np.array([[235, 235, 235], [25, 25, 25], [205, 35, 35], [30, 160, 170], [220, 190, 40]],
                        dtype=np.float32)
ITEM_TYPES = ("none", "shoulder-bag", "case", "backpack")
ITEM_COLOURS = np.array([[135, 85, 40], [120, 175, 225], [195, 60, 155], [75, 120, 60]], dtype=np.float32)
SKIN_COLOURS = np.array([[232, 192, 160], [192, 142, 102], [122, 86, 60]], dtype=np.float32)

# values per region code (the item without its side: horizontal flipping makes the side unreadable)
CODE_SIZES = {"head": len(HAIR_COLOURS) * len(HEADWEAR), "upper": len(UPPER_COLOURS) * NUM_PATTERNS,
              "lower": len(LOWER_COLOURS) * len(LOWER_STYLES), "shoes": len(SHOE_COLOURS),
              "item": 1 + (len(ITEM_TYPES) - 1) * len(ITEM_COLOURS)}

# derive_seed streams (distinct from version 1's 1-5)
_S_LOOKS, _S_SCENE, _S_IMAGE_LOOK, _S_OCCLUDER, _S_CLUTTER = 21, 22, 23, 24, 25


@dataclass(frozen=True)
class Look:
    """What a person wears in one image: one value per region attribute (indices into the palettes)."""

    hair: int
    headwear: int
    upper_colour: int
    upper_pattern: int  # 0 plain, else 1 + shape * 2 + shade
    lower_colour: int
    lower_style: int
    shoes: int
    item_type: int  # 0: no item
    item_side: int  # -1 left, 1 right (image coordinates)
    item_colour: int

    def region_codes(self) -> tuple[int, int, int, int, int]:
        """One integer per region of ``REGIONS``; the item's side is left out."""
        item = 0 if self.item_type == 0 else 1 + (self.item_type - 1) * len(ITEM_COLOURS) + self.item_colour
        return (self.hair * len(HEADWEAR) + self.headwear, self.upper_colour * NUM_PATTERNS + self.upper_pattern,
                self.lower_colour * len(LOWER_STYLES) + self.lower_style, self.shoes, item)


def _draw_others(rng: np.random.Generator, upper_colour: int, upper_pattern: int) -> Look:
    """A look with the given upper body and every other region drawn uniformly."""
    item_type = int(rng.integers(len(ITEM_TYPES)))
    return Look(int(rng.integers(len(HAIR_COLOURS))), int(rng.integers(len(HEADWEAR))), upper_colour, upper_pattern,
                int(rng.integers(len(LOWER_COLOURS))), int(rng.integers(len(LOWER_STYLES))),
                int(rng.integers(len(SHOE_COLOURS))), item_type, int(rng.choice([-1, 1])),
                int(rng.integers(len(ITEM_COLOURS))))


def make_looks(num_ids: int, seed: int, split: int) -> list[Look]:
    """The identities of one split (0 train, 1 test): upper bodies all different, other regions independent."""
    if num_ids > CODE_SIZES["upper"]:
        raise AEAError(f"{num_ids} identities in one split is more than the {CODE_SIZES['upper']} distinct "
                       "upper bodies version 2 can draw; use fewer identities")
    rng = np.random.default_rng(derive_seed(seed, _S_LOOKS, split))
    uppers = rng.choice(CODE_SIZES["upper"], size=num_ids, replace=False)
    return [_draw_others(rng, int(u) // NUM_PATTERNS, int(u) % NUM_PATTERNS) for u in uppers]


def identity_codes(looks: list[Look], variant: str) -> np.ndarray:
    """Identities x regions codes for C1/C2: single-cue identities share one value in every other region."""
    codes = np.array([look.region_codes() for look in looks], dtype=np.int64)
    if variant == "single-cue":
        keep = REGIONS.index(SALIENT_REGION)
        codes[:, [r for r in range(len(REGIONS)) if r != keep]] = 0
    return codes


# ----------------------------------------------------------------------------- cameras' clutter


@dataclass(frozen=True)
class Clutter:
    """A camera's background clutter: at most ``max_objects`` per image, colours from its palette."""

    max_objects: int
    palette: np.ndarray  # (3, 3)


def camera_clutter(num_cams: int, seed: int) -> list[Clutter]:
    rng = np.random.default_rng(derive_seed(seed, _S_CLUTTER))
    return [Clutter(int(rng.integers(1, 5)), rng.uniform(30, 225, size=(3, 3)).astype(np.float32))
            for _ in range(num_cams)]


# ----------------------------------------------------------------------------- drawing

_YY, _XX = (a.astype(np.float32) + 0.5 for a in np.mgrid[0:HEIGHT, 0:WIDTH])
_LABEL = {name: i for i, name in enumerate(LABELS)}


def _paint_clutter(img: np.ndarray, clutter: Clutter, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(1, clutter.max_objects + 1))):
        kind = int(rng.integers(3))
        colour = clutter.palette[int(rng.integers(len(clutter.palette)))] + rng.uniform(-12, 12, size=3)
        y, x = rng.uniform(0, HEIGHT), rng.uniform(0, WIDTH)
        if kind == 0:  # box
            h, w = rng.uniform(8, 30), rng.uniform(8, 24)
            shape = (np.abs(_YY - y) < h / 2) & (np.abs(_XX - x) < w / 2)
        elif kind == 1:  # pole
            shape = np.abs(_XX - x) < rng.uniform(1.5, 4)
        else:  # blob
            shape = ((_YY - y) / rng.uniform(5, 14)) ** 2 + ((_XX - x) / rng.uniform(4, 10)) ** 2 <= 1
        img[shape] = colour


def _upper_pattern(pattern: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pixels of the torso in the pattern's shade (under half of the torso, so its colour dominates)."""
    shape = UPPER_SHAPES[(pattern - 1) // len(UPPER_SHADES)]
    tv = v - 21  # rows from the torso's top (40 units); columns by |u|, so every shape is symmetric
    if shape == "hstripes":
        return tv % 8 < 3
    if shape == "vstripes":
        return np.abs(u) % 8 < 1.5
    if shape == "band":
        return (tv >= 16) & (tv < 26)
    if shape == "grid":
        return (tv % 10 < 2) | (np.abs(u) % 10 < 1)
    return tv < 9  # yoke


def _paint_person(img: np.ndarray, labels: np.ndarray, look: Look, cam: CameraStyle,
                  var: synthetic._Variation, rng: np.random.Generator) -> None:
    """Paint ``look`` and its part labels in place. Canonical person: 120 units tall, centred at u = 0."""
    s = cam.scale * var.scale
    top = (HEIGHT - 120 * s) / 2 + cam.dy + var.dy
    u = (_XX - (WIDTH / 2 + cam.dx + var.dx)) / s
    v = (_YY - top) / s
    du = var.stride * np.clip((v - 62) / 44, 0, 1)
    ul, ur = u + du, u - du  # legs swing in opposite directions
    jitter = {r: rng.uniform(-8, 8, size=3).astype(np.float32) for r in REGIONS}
    skin = SKIN_COLOURS[int(rng.integers(len(SKIN_COLOURS)))] + rng.uniform(-6, 6, size=3).astype(np.float32)

    def box(x: np.ndarray, u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
        return (x >= u0) & (x < u1) & (v >= v0) & (v < v1)

    def paint(where: np.ndarray, colour: np.ndarray, region: str) -> None:
        img[where] = colour
        labels[where] = _LABEL[region]

    # lower body: garment, and skin below shorts or a skirt
    lower = LOWER_COLOURS[look.lower_colour] + jitter["lower"]
    style = LOWER_STYLES[look.lower_style]
    legs = box(u, -12, 12, 60, 70) | box(ul, -12, -1, 60, 106) | box(ur, 1, 12, 60, 106)
    if style == "trousers":
        paint(legs, lower, "lower")
    elif style == "shorts":
        paint(legs, skin, "lower")
        paint(legs & (v < 88), lower, "lower")
    else:
        paint(box(ul, -9, -2, 60, 106) | box(ur, 2, 9, 60, 106), skin, "lower")
        half_width = 12 + (v - 60) * 4 / 30
        paint((np.abs(u) < half_width) & (v >= 60) & (v < 90), lower, "lower")
    paint(box(ul, -13, -1, 105, 116) | box(ur, 1, 13, 105, 116), SHOE_COLOURS[look.shoes] + jitter["shoes"], "shoes")
    # upper body: sleeves, torso, pattern
    upper = UPPER_COLOURS[look.upper_colour] + jitter["upper"]
    paint(box(u + var.swing, -18, -13, 22, 58) | box(u - var.swing, 13, 18, 22, 58), upper, "upper")
    torso = box(u, -13, 13, 21, 61)
    paint(torso, upper, "upper")
    if look.upper_pattern:
        base = UPPER_COLOURS[look.upper_colour]
        dark = UPPER_SHADES[(look.upper_pattern - 1) % len(UPPER_SHADES)] == "dark"
        shade = base * DARK_SHADE if dark else base + LIGHT_SHADE * (255 - base)
        paint(torso & _upper_pattern(look.upper_pattern, u, v), shade + jitter["upper"], "upper")
    # carried item, over the upper body where they meet
    if look.item_type:
        item = ITEM_COLOURS[look.item_colour] + jitter["item"]
        su = u * look.item_side  # item-side coordinate: the item hangs at su > 0
        kind = ITEM_TYPES[look.item_type]
        # all beside the torso, so covering an item's bounding box never hides the torso
        if kind == "shoulder-bag":  # strap down the sleeve to a bag at the hip
            shape = box(su, 14, 16.5, 21, 42) | box(su, 13, 24, 40, 62)
        elif kind == "case":  # carried below the hand
            shape = box(su, 17, 27, 62, 82) | box(su, 20, 24, 58, 62)
        else:  # backpack showing tall and narrow behind the shoulder, with its handle
            shape = box(su, 18, 24, 22, 54) | box(su, 19.5, 22.5, 18, 22)
        paint(shape, item, "item")
    # head: face, hair at the sides and (without headwear) on top, headwear
    head = (u / 7) ** 2 + ((v - 12) / 9) ** 2 <= 1
    paint(head, skin, "head")
    hair = HAIR_COLOURS[look.hair] + jitter["head"]
    paint(head & ((v < 8) | ((np.abs(u) >= 5) & (v < 17))), hair, "head")
    wear = HEADWEAR[look.headwear]
    if wear != "none":
        colour = HEADWEAR_COLOURS[look.headwear] + jitter["head"]
        if wear == "cap":
            shape = box(u, -8, 8, 1, 7) | box(u, -11, 11, 6, 8)
        elif wear == "beanie":
            shape = ((u / 8) ** 2 + ((v - 9) / 8) ** 2 <= 1) & (v < 8)
        else:
            shape = head & (v >= 6) & (v < 9)
        paint(shape, colour, "head")


def _occlude(img: np.ndarray, labels: np.ndarray, region: str, colour: np.ndarray) -> None:
    """Cover the bounding box of ``region`` (plus 2 px) with a solid block."""
    ys, xs = np.nonzero(labels == _LABEL[region])
    y0, y1 = max(int(ys.min()) - 2, 0), min(int(ys.max()) + 3, HEIGHT)
    x0, x1 = max(int(xs.min()) - 2, 0), min(int(xs.max()) + 3, WIDTH)
    img[y0:y1, x0:x1] = colour
    labels[y0:y1, x0:x1] = _LABEL["occluder"]


def render(look: Look, cam: CameraStyle, clutter: Clutter, rng: np.random.Generator,
           occluder: tuple[float, float, np.ndarray] | None = None,
           occlusion: float = 0.0, occluded_region: str = "any") -> tuple[np.ndarray, np.ndarray, str | None]:
    """(image uint8 HxWx3, part labels uint8 HxW, occluded region or None) of one picture.

    ``rng`` draws the scene; ``occluder`` = (u, r, colour) drawn from its own
    stream: iff ``u < occlusion``, the region with index ``floor(r * regions
    shown)`` is covered (``occluded_region="any"``, version 2), or the region
    ``occluded_region`` when the image shows it (version 3; an image without
    that region, only possible for the item, stays unoccluded).  Illumination
    and noise act on the occluder too.
    """
    var = synthetic._Variation.draw(rng, 0.0)  # version 1's background, pose, gain and noise draws
    img = synthetic._background(cam, var)
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    _paint_clutter(img, clutter, rng)
    _paint_person(img, labels, look, cam, var, rng)
    region = None
    if occluder is not None and occluder[0] < occlusion:
        shown = [r for r in REGIONS if (labels == _LABEL[r]).any()]
        if occluded_region == "any":
            region = shown[int(occluder[1] * len(shown))]
        elif occluded_region in shown:
            region = occluded_region
        if region is not None:
            _occlude(img, labels, region, occluder[2])
    img = img * cam.gain * var.gain + var.noise
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), labels, region


# ----------------------------------------------------------------------------- writing


def parts_dir(dataset_dir: str | os.PathLike) -> Path:
    """Where the part labels of a generated release live: beside it, outside its layout."""
    dataset_dir = Path(dataset_dir)
    return dataset_dir.parent / f"{dataset_dir.name}{PARTS_SUFFIX}"


def part_label_path(dataset_dir: str | os.PathLike, image_path: str | os.PathLike) -> Path:
    """The label PNG of an image of the release at ``dataset_dir``."""
    relative = Path(image_path).resolve().relative_to(Path(dataset_dir).resolve())
    return parts_dir(dataset_dir) / relative.with_suffix(".png")


def resolve_mechanism_size(size: str | SyntheticSize | Mapping[str, object]) -> SyntheticSize:
    """A size by name (``smoke``, ``tiny``), a SyntheticSize, or a mapping of its fields."""
    if isinstance(size, str):
        if size not in MECHANISM_SIZES:
            raise AEAError(f"unknown mechanism size {size!r}; choose one of {', '.join(MECHANISM_SIZES)} "
                           "or give counts")
        return MECHANISM_SIZES[size]
    return resolve_size(size)


def _write(out: Path, parts: Path, spec: SyntheticSize, variant: str, occlusion: float,
           seed: int, occluded_region: str = "any") -> tuple[dict[str, int], dict, dict[str, dict]]:
    """Write images and labels; return (counts, constraints, per-image record)."""
    num_cams = NUM_CAMS[DATASET]
    _, shots = synthetic._folder_plan(DATASET, spec, num_cams, seed)
    names = synthetic._folder_names(DATASET, shots, num_cams, seed)
    looks = make_looks(spec.train_ids, seed, 0) + make_looks(spec.test_ids, seed, 1)
    cams, clutter = camera_styles(num_cams, seed), camera_clutter(num_cams, seed)
    for folder in SPLIT_FOLDERS.values():
        (out / folder).mkdir(parents=True)
        (parts / folder).mkdir(parents=True)
    train_folder = SPLIT_FOLDERS["train"]
    region_pixels, records = np.zeros(len(LABELS)), {}
    for shot, name in tqdm(list(zip(shots, names)), desc="generating mechanism data", unit="img", leave=False,
                           disable=None):
        look = looks[shot.identity]
        if variant == "single-cue":
            look = _draw_others(np.random.default_rng(derive_seed(seed, _S_IMAGE_LOOK, shot.key)),
                                look.upper_colour, look.upper_pattern)
        occluder = None
        if shot.folder != train_folder:
            occ_rng = np.random.default_rng(derive_seed(seed, _S_OCCLUDER, shot.key))
            occluder = (float(occ_rng.random()), float(occ_rng.random()),
                        occ_rng.uniform(20, 235, size=3).astype(np.float32))
        img, labels, region = render(look, cams[shot.cam], clutter[shot.cam],
                                     np.random.default_rng(derive_seed(seed, _S_SCENE, shot.key)), occluder, occlusion,
                                     occluded_region)
        Image.fromarray(img).save(out / shot.folder / name, format="JPEG", quality=90)
        Image.fromarray(labels).save(parts / shot.folder / Path(name).with_suffix(".png"), format="PNG")
        if shot.folder == train_folder:
            region_pixels += np.bincount(labels.reshape(-1), minlength=len(LABELS))
        records[f"{shot.folder}/{name}"] = {"look": dataclasses.asdict(look), "camera": shot.cam,
                                            "occluded": region}
    by_folder = {f: sum(s.folder == f for s in shots) for f in SPLIT_FOLDERS.values()}
    counts = synthetic._counts(by_folder[train_folder], spec.train_ids, by_folder[SPLIT_FOLDERS["query"]],
                               spec.test_ids, by_folder[SPLIT_FOLDERS["gallery"]], 0)
    constraints = constraint_report(identity_codes(looks[:spec.train_ids], variant))
    share = region_pixels / region_pixels.sum()
    constraints["train_pixel_share"] = {name: float(share[i]) for i, name in enumerate(LABELS)}
    # the erased share R of the experiment: the salient region's pixel share rounded up to 5%
    constraints["salient_erase_ratio"] = int(5 * math.ceil(100 * share[LABELS.index(SALIENT_REGION)] / 5))
    return counts, constraints, records


def check_constraints(constraints: Mapping[str, object], variant: str) -> None:
    """Refuse a data set that does not have the variant's designed property (docs/mechanism.md)."""
    if variant == "redundant" and not (constraints["c1_passes"] and constraints["c2_passes"]):
        raise AEAError(
            f"generated identities miss C1/C2 (hide one region: {constraints['c1_min_hide_one']:.3f} >= 0.95, "
            f"two: {constraints['c1_min_hide_two']:.3f} >= 0.80, C2: {constraints['c2']:.3f} >= 0.95); "
            "use fewer training identities or another seed")
    if variant == "single-cue" and constraints["salient_alone"] < 1.0:
        raise AEAError("single-cue identities are not all told apart by the upper body; use fewer identities")


def make_mechanism(root: str | os.PathLike, *, variant: str = "redundant", occlusion: float = 0.0,
                   size: str | SyntheticSize | Mapping[str, object] = "smoke", seed: int = 0,
                   version: int = GENERATOR_VERSION, occluded_region: str = "any") -> Path:
    """Generate a data set of generator ``version`` (2 or 3) under data root ``root`` (Market-1501 layout); return
    the release directory.

    The part labels go to ``<release>.parts/`` with ``images.json``; the
    marker ``aea_synthetic.json`` records the parameters, counts and the
    measured C1/C2.  The same parameters again are a no-op; a directory that
    is not a generated data set is never overwritten.  ``occluded_region``
    (version 3 only): the region an occluded test image hides, or ``any``.
    """
    if variant not in VARIANTS:
        raise AEAError(f"unknown variant {variant!r}; choose {' or '.join(VARIANTS)}")
    if not 0.0 <= occlusion <= 1.0:
        raise AEAError(f"occlusion={occlusion} is not a probability; give a value in [0, 1] such as 0.2")
    if version not in GENERATOR_VERSIONS:
        raise AEAError(f"unknown generator version {version}; choose {' or '.join(map(str, GENERATOR_VERSIONS))}")
    if occluded_region not in OCCLUDED_REGIONS:
        raise AEAError(f"unknown occluded region {occluded_region!r}; choose one of {', '.join(OCCLUDED_REGIONS)}")
    if version == 2 and occluded_region != "any":
        raise AEAError("generator version 2 occludes any region; a fixed occluded region needs version=3")
    spec = resolve_mechanism_size(size)
    root = Path(root)
    target = root / MARKET_DIR
    labels_target = parts_dir(target)
    params = {"generator": "bodyparts", "generator_version": int(version), "dataset": DATASET,
              "variant": variant, "occlusion": float(occlusion), "size": dataclasses.asdict(spec), "seed": int(seed)}
    if version >= 3:  # version 2's parameters stay exactly as they were (its markers, its no-op check)
        params["occluded_region"] = occluded_region
    sweep_temp_dirs(target)  # the folder of a generation killed before its rename
    marker = target / MARKER_NAME
    if marker.is_file():
        if read_json(marker).get("params") == json.loads(json.dumps(params)) and labels_target.is_dir():
            log.info("mechanism data already generated with these parameters at %s", target)
            return target
    elif target.exists() or labels_target.exists():
        raise AEAError(f"{target} exists and is not a generated dataset (no {MARKER_NAME}); "
                       "use another data root for generated data")
    root.mkdir(parents=True, exist_ok=True)
    log.info("generating mechanism data (version %d, %s, p=%g, occluded region %s, seed %d) at %s", version, variant,
             occlusion, occluded_region, seed, target)
    tmp = temp_dir_beside(target)
    try:
        counts, constraints, records = _write(tmp / "release", tmp / "parts", spec, variant, occlusion, seed,
                                              occluded_region)
        check_constraints(constraints, variant)
        if version >= 3:  # how many test images hide each region (version 2's marker stays as it was)
            hidden = [r["occluded"] for name, r in records.items() if not name.startswith(SPLIT_FOLDERS["train"])]
            constraints["test_images"] = len(hidden)
            constraints["occluded_test_images"] = {region: hidden.count(region) for region in REGIONS}
        write_json(tmp / "parts" / IMAGES_NAME, records)
        write_json(tmp / "release" / MARKER_NAME,
                   {"params": params, "counts": {DATASET: counts}, "constraints": constraints})
        for old, new in ((target, tmp / "release"), (labels_target, tmp / "parts")):
            refuse_foreign_entries(old, {entry.name for entry in new.iterdir()},
                                   f"or use another data root than {root}")
        for old in (target, labels_target):
            if old.exists():
                shutil.rmtree(old)
        os.replace(tmp / "parts", labels_target)
        os.replace(tmp / "release", target)  # last: the marker inside says the data set is complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
