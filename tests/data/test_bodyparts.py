"""Generator version 2 (body parts): labels, region colours, C1/C2, C4 occlusion rate, determinism, pairing."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aea.cli import main
from aea.data.bodyparts import (
    IMAGES_NAME,
    ITEM_COLOURS,
    LOWER_COLOURS,
    MECHANISM_SIZES,
    SHOE_COLOURS,
    UPPER_COLOURS,
    Look,
    identity_codes,
    make_looks,
    make_mechanism,
    part_label_path,
    parts_dir,
)
from aea.data.datasets import MARKER_NAME, MARKET_DIR, SPLIT_FOLDERS, load_dataset
from aea.data.synthetic import camera_styles
from aea.errors import AEAError
from aea.io import read_json
from aea.mechanism import LABELS, constraint_report

SEED = 3
# enough test images (40 ids x 2 cameras x 3) for the occlusion rate to mean something, still ~1 s
SIZE = {"train_ids": 16, "test_ids": 40, "min_cams": 2, "max_cams": 2, "train_imgs_per_cam": (1, 2),
        "test_imgs_per_cam": (3, 3), "distractors": 0, "junk": 0, "occlusion": 0.0}
LABEL = {name: i for i, name in enumerate(LABELS)}


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("aea_split")}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Release directories: redundant at p = 0, 0.15, 0.3 and single-cue at p = 0, one generator seed."""
    base = tmp_path_factory.mktemp("bodyparts")
    return {key: make_mechanism(base / key, variant=variant, occlusion=p, size=SIZE, seed=SEED)
            for key, variant, p in (("r0", "redundant", 0.0), ("r15", "redundant", 0.15),
                                    ("r30", "redundant", 0.3), ("s0", "single-cue", 0.0))}


def images_of(release: Path) -> list[Path]:
    return sorted(p for folder in SPLIT_FOLDERS.values() for p in (release / folder).glob("*.jpg"))


def records(release: Path) -> dict[str, dict]:
    return read_json(parts_dir(release) / IMAGES_NAME)


def test_every_image_has_a_label_map_of_its_size_outside_the_release(generated: dict[str, Path]) -> None:
    release = generated["r30"]
    images, recs = images_of(release), records(release)
    assert len(images) == len(recs) > 0
    for image in images:
        labels = np.asarray(Image.open(part_label_path(release, image)))
        assert labels.shape == np.asarray(Image.open(image)).shape[:2] == (128, 64)
        assert labels.dtype == np.uint8 and labels.max() < len(LABELS)
        hidden = recs[str(image.relative_to(release))]["occluded"]
        for region in ("head", "upper", "lower", "shoes"):  # always painted (the item may be absent)
            assert (labels == LABEL[region]).any() == (region != hidden), (image, region)
    assert not list(release.rglob("*.png"))  # nothing but the release's own files inside it
    # the unchanged Market-1501 parser reads the release, counts checked against the marker
    split = load_dataset("market1501", release.parent)
    counts = read_json(release / MARKER_NAME)["counts"]["market1501"]
    assert (len(split.train), split.num_train_pids, len(split.query), len(split.gallery)) == (
        counts["train_images"], SIZE["train_ids"], counts["query_images"], counts["gallery_images"])
    assert all(part_label_path(release, r.path).is_file() for r in split.train + split.query + split.gallery)


def _decode(pixels: np.ndarray, gain: np.ndarray, palette: np.ndarray) -> int:
    """The palette colour, lit by the camera (and clipped as pixels are), nearest to a region's median pixel."""
    colour = np.median(pixels.reshape(-1, 3).astype(np.float64), axis=0)
    return int(np.argmin(np.linalg.norm(np.clip(palette * gain, 0, 255) - colour, axis=1)))


@pytest.mark.parametrize("key", ["r30", "s0"])
def test_labelled_regions_carry_the_looks_colours(generated: dict[str, Path], key: str) -> None:
    """Pixels labelled upper / lower / shoes / item decode to that image's colours, up to the camera's gain."""
    release = generated[key]
    gains = [cam.gain for cam in camera_styles(6, SEED)]
    checked = defaultdict(int)
    for rel, record in records(release).items():
        look = Look(**record["look"])
        img = np.asarray(Image.open(release / rel))
        labels = np.asarray(Image.open(part_label_path(release, release / rel)))
        expected = {"upper": (UPPER_COLOURS, look.upper_colour), "lower": (LOWER_COLOURS, look.lower_colour),
                    "shoes": (SHOE_COLOURS, look.shoes), "item": (ITEM_COLOURS, look.item_colour)}
        for region, (palette, index) in expected.items():
            if record["occluded"] == region or (region == "item" and look.item_type == 0):
                assert not (labels == LABEL[region]).any(), (rel, region)  # hidden or absent: no pixel left
                continue
            where = labels == LABEL[region]
            if region == "lower":  # below shorts or a skirt the legs show skin: read the garment at the hips
                rows = np.nonzero(where.any(axis=1))[0]
                where[rows[0] + (rows[-1] - rows[0]) // 4 + 1:] = False
            assert _decode(img[where], gains[record["camera"]], palette) == index, (rel, region)
            checked[region] += 1
    assert min(checked.values()) > 50


def test_redundant_identities_meet_c1_c2_and_the_marker_records_them(generated: dict[str, Path]) -> None:
    release = generated["r0"]
    marker = read_json(release / MARKER_NAME)
    assert marker["params"] == {"generator": "bodyparts", "generator_version": 2, "dataset": "market1501",
                                "variant": "redundant", "occlusion": 0.0, "size": {**SIZE, "train_imgs_per_cam": [1, 2],
                                                                                  "test_imgs_per_cam": [3, 3],
                                                                                  "image_totals": None},
                                "seed": SEED}
    constraints = marker["constraints"]
    # recomputed from the looks written beside the images: one look per training identity (pid)
    by_pid = {}
    for rel, record in records(release).items():
        if rel.startswith(SPLIT_FOLDERS["train"]):
            by_pid.setdefault(Path(rel).name.split("_")[0], set()).add(Look(**record["look"]))
    assert len(by_pid) == SIZE["train_ids"] and all(len(looks) == 1 for looks in by_pid.values())
    codes = identity_codes([next(iter(looks)) for _, looks in sorted(by_pid.items())], "redundant")
    report = constraint_report(codes)
    assert report["c1_min_hide_one"] == constraints["c1_min_hide_one"] >= 0.95
    assert report["c1_min_hide_two"] == constraints["c1_min_hide_two"] >= 0.80
    assert report["c2"] == constraints["c2"] >= 0.95 and constraints["c1_passes"] and constraints["c2_passes"]
    share = constraints["train_pixel_share"]
    assert sum(share.values()) == pytest.approx(1.0) and share["occluder"] == 0.0
    # the upper body is the largest region, and R covers it: its share rounded up to 5%
    assert share["upper"] == max(v for k, v in share.items() if k != "background")
    assert constraints["salient_erase_ratio"] == 5 * math.ceil(20 * share["upper"])


@pytest.mark.parametrize("seed", [0, 1])
def test_preregistered_generator_seeds_meet_c1_c2_at_smoke_size(seed: int) -> None:
    size = MECHANISM_SIZES["smoke"]
    for split, n in ((0, size.train_ids), (1, size.test_ids)):
        report = constraint_report(identity_codes(make_looks(n, seed, split), "redundant"))
        assert report["c1_passes"] and report["c2_passes"] and report["salient_alone"] == 1.0


def test_single_cue_identities_differ_only_in_the_upper_body(generated: dict[str, Path]) -> None:
    constraints = read_json(generated["s0"] / MARKER_NAME)["constraints"]
    assert constraints["salient_alone"] == 1.0 and constraints["c2"] == 0.0 and not constraints["c1_passes"]
    uppers, lowers = defaultdict(set), defaultdict(set)
    redundant = records(generated["r0"])
    for rel, record in records(generated["s0"]).items():
        pid, look = Path(rel).name.split("_")[0], Look(**record["look"])
        uppers[pid].add((look.upper_colour, look.upper_pattern))
        lowers[pid].add(look.region_codes()[2:])
        twin = Look(**redundant[rel]["look"])  # same file name in the redundant variant: same person's upper body
        assert (twin.upper_colour, twin.upper_pattern) == (look.upper_colour, look.upper_pattern)
    assert all(len(u) == 1 for u in uppers.values())
    # lower body, shoes and item are drawn per image: an identity seen 4+ times nearly never repeats them all
    varied = [len(v) > 1 for pid, v in lowers.items()]
    assert np.mean(varied) > 0.9


def test_occlusion_rate_is_p_within_binomial_bounds_and_nested_across_p(generated: dict[str, Path]) -> None:
    at = {p: records(generated[key]) for p, key in ((0.0, "r0"), (0.15, "r15"), (0.3, "r30"))}
    test_images = [rel for rel in at[0.0] if not rel.startswith(SPLIT_FOLDERS["train"])]
    n = len(test_images)
    assert n == 40 * 2 * 3
    for p, recs in at.items():
        occluded = {rel: r["occluded"] for rel, r in recs.items() if r["occluded"]}
        assert all(not rel.startswith(SPLIT_FOLDERS["train"]) for rel in occluded)  # training never occluded
        assert abs(len(occluded) - n * p) <= 4 * math.sqrt(n * p * (1 - p))  # within 4 binomial sd of n p
        if p == 0.3:
            assert len(occluded) > 0 and set(occluded.values()) == {"head", "upper", "lower", "shoes", "item"}
    low = {rel for rel, r in at[0.15].items() if r["occluded"]}
    high = {rel: r["occluded"] for rel, r in at[0.3].items() if r["occluded"]}
    assert low <= set(high) and all(at[0.15][rel]["occluded"] == high[rel] for rel in low)
    # each occluder's pixels are labelled 6; a non-occluded test image has none
    release = generated["r30"]
    for rel, record in at[0.3].items():
        labels = np.asarray(Image.open(part_label_path(release, release / rel)))
        assert (labels == LABEL["occluder"]).any() == bool(record["occluded"])


def test_same_seed_same_bytes_and_p_changes_only_the_occluded_test_images(
        generated: dict[str, Path], tmp_path: Path) -> None:
    again = make_mechanism(tmp_path / "again", variant="redundant", occlusion=0.3, size=SIZE, seed=SEED)
    for release in (generated["r30"], again):
        assert (parts_dir(release)).is_dir()
    assert digests(again) == digests(generated["r30"])
    assert digests(parts_dir(again)) == digests(parts_dir(generated["r30"]))
    other = make_mechanism(tmp_path / "other", variant="redundant", occlusion=0.3, size=SIZE, seed=SEED + 1)
    assert digests(other) != digests(generated["r30"])
    # p = 0 vs 0.3: every image the occluder spares is byte-identical
    clean, occluded = digests(generated["r0"]), digests(generated["r30"])
    spared = [rel for rel, r in records(generated["r30"]).items() if not r["occluded"]]
    assert len(spared) > 200 and all(clean[rel] == occluded[rel] for rel in spared)
    changed = [rel for rel, r in records(generated["r30"]).items() if r["occluded"]]
    assert all(clean[rel] != occluded[rel] for rel in changed)


def test_same_parameters_again_is_a_no_op_and_bad_input_is_refused(generated: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    release = generated["r0"]
    marker = release / MARKER_NAME
    before = marker.stat().st_mtime_ns
    assert make_mechanism(release.parent, variant="redundant", occlusion=0.0, size=SIZE, seed=SEED) == release
    assert marker.stat().st_mtime_ns == before
    with pytest.raises(AEAError, match="choose redundant or single-cue"):
        make_mechanism(tmp_path, variant="both", size="tiny")
    with pytest.raises(AEAError, match=r"in \[0, 1\]"):
        make_mechanism(tmp_path, occlusion=1.5, size="tiny")
    with pytest.raises(AEAError, match="use fewer identities"):
        make_mechanism(tmp_path, size={**SIZE, "train_ids": 200})
    with pytest.raises(AEAError, match="unknown mechanism size"):
        make_mechanism(tmp_path, size="huge")
    (tmp_path / "real" / MARKET_DIR).mkdir(parents=True)
    with pytest.raises(AEAError, match="not a generated dataset"):
        make_mechanism(tmp_path / "real", size="tiny")
    assert not list((tmp_path / "real").iterdir())[1:]  # nothing written beside the real data set


def test_cli_make_mechanism(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    assert main(["data", "make-mechanism", "--root", str(root), "--variant", "single-cue", "--occlusion", "0.2",
                 "--seed", "1", "--size", "tiny"]) == 0
    params = read_json(root / MARKET_DIR / MARKER_NAME)["params"]
    assert (params["variant"], params["occlusion"], params["seed"]) == ("single-cue", 0.2, 1)
    assert params["size"]["train_ids"] == MECHANISM_SIZES["tiny"].train_ids
    assert main(["data", "make-mechanism", "--root", str(root), "--occlusion", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aea: error: occlusion=2.0 is not a probability")
