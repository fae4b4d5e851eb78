"""Generated datasets: determinism, the identity design, visibility of small parts, formats, safety."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from aea.data.datasets import CUHK03_RELEASE_DIR, MARKER_NAME, MARKET_DIR, cuhk03_config_name
from aea.data.synthetic import (
    SYNTHETIC_SIZES,
    Identity,
    SyntheticSize,
    camera_styles,
    make_identities,
    make_synthetic,
    render,
    resolve_size,
)
from aea.errors import AEAError


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, tiny_releases: Path) -> None:
    for name in ("market1501", "cuhk03"):
        make_synthetic(name, tmp_path / "again", size="tiny", seed=0)
        make_synthetic(name, tmp_path / "seed1", size="tiny", seed=1)
    again, other = digests(tmp_path / "again"), digests(tmp_path / "seed1")
    reference = {k: v for k, v in digests(tiny_releases).items() if k in again}  # the session's seed-0 copy
    assert len(again) > 100 and again == reference
    for key in ("cuhk03_release/cuhk-03.mat", cuhk03_config_name("labeled")):
        assert other[key] != again[key]
    market = [k for k in again if k.startswith(MARKET_DIR) and k.endswith(".jpg")]
    assert set(market) != {k for k in other if k.endswith(".jpg") and k.startswith(MARKET_DIR)}


def test_identities_share_large_parts_in_groups_and_differ_in_small_ones() -> None:
    ids = make_identities(200, seed=0)
    assert len(set(ids)) == 200
    groups: dict[int, list[Identity]] = defaultdict(list)
    for who in ids:
        groups[who.group].append(who)
    assert len(groups) == 25  # 200 / IDS_PER_GROUP
    for members in groups.values():
        assert len({(m.torso, m.trousers) for m in members}) == 1  # one (torso, trousers) pair per group
        assert len({m.small_code for m in members}) == len(members)  # told apart by small parts only
        assert 6 <= len(members) <= 10
    assert len({(g[0].torso, g[0].trousers) for g in groups.values()}) == 25  # groups differ in large parts
    assert make_identities(200, seed=0) == ids and make_identities(200, seed=1) != ids


def part_rows(a: Identity, b: Identity) -> tuple[int, int]:
    """(rows, pixels) where a and b differ, rendered alike and resized to the smoke input 64 x 32."""
    cam = camera_styles(1, seed=3)[0]
    imgs = [render(who, cam, np.random.default_rng(7)) for who in (a, b)]
    small = [np.asarray(Image.fromarray(i).resize((32, 64), Image.BILINEAR), dtype=np.int16) for i in imgs]
    changed = np.abs(small[0] - small[1]).max(axis=2) > 40
    return int(changed.any(axis=1).sum()), int(changed.sum())


@pytest.mark.parametrize("part, value", [("shoes", 2), ("hat", 2), ("bag", 3), ("stripes", 2), ("stripes", 1)])
def test_small_parts_stay_visible_at_the_smoke_input_size(part: str, value: int) -> None:
    """At 128 x 64 the small parts are >= ~8 px tall: >= 4 rows at 64 x 32; the torso is far larger."""
    base = Identity(group=0, torso=1, trousers=0, shoes=1, hat=0, bag=0, stripes=0, skin=0)
    rows, pixels = part_rows(base, dataclasses.replace(base, **{part: value}))
    assert rows >= 4
    torso_rows, torso_pixels = part_rows(base, dataclasses.replace(base, torso=0))
    assert torso_pixels > 2 * pixels and torso_rows >= 15


def test_cameras_differ_and_images_are_market_sized() -> None:
    cams = camera_styles(6, seed=0)
    assert len({c.texture for c in cams}) == 6
    assert len({round(float(c.gain.mean()), 3) for c in cams}) == 6
    img = render(make_identities(1, 0)[0], cams[0], np.random.default_rng(0), occlusion=1.0)
    assert img.shape == (128, 64, 3) and img.dtype == np.uint8


def test_market_files_follow_the_release_naming(tiny_releases: Path) -> None:
    ddir = tiny_releases / MARKET_DIR
    names = [p.name for p in ddir.rglob("*.jpg")]
    pattern = r"(-1|\d{4})_c[1-6]s[1-6]_\d{6}_\d{2}\.jpg"
    assert all(__import__("re").fullmatch(pattern, n) for n in names)
    with Image.open(next(ddir.glob("query/*.jpg"))) as im:
        assert (im.format, im.size) == ("JPEG", (64, 128))


def test_cuhk03_mat_is_laid_out_like_matlab_v73(tiny_releases: Path) -> None:
    mat = tiny_releases / CUHK03_RELEASE_DIR / "cuhk-03.mat"
    assert mat.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(mat, "r") as f:
        for setting in ("labeled", "detected"):
            assert f[setting].shape == (1, 5) and f[setting].attrs["MATLAB_class"] == b"cell"
            cells = [f[ref] for ref in f[setting][0]]
            assert all(c.shape[0] == 10 and c.attrs["MATLAB_class"] == b"cell" for c in cells)
            assert sum(c.shape[1] for c in cells) == 32  # every identity in exactly one camera pair
        entries = [f[ref] for ref in f[f["labeled"][0, 0]][()].ravel()]
        empty = [e for e in entries if e.attrs.get("MATLAB_empty")]
        full = [e for e in entries if not e.attrs.get("MATLAB_empty")]
        assert empty and all(e.shape == (2,) and e.dtype == np.uint64 for e in empty)
        assert all(e.shape == (3, 64, 128) and e.dtype == np.uint8 for e in full)
    config = scipy.io.loadmat(tiny_releases / cuhk03_config_name("detected"))
    assert {"filelist", "labels", "camId", "train_idx", "query_idx", "gallery_idx"} <= set(config)
    assert (tiny_releases / cuhk03_config_name("detected")).read_bytes()[:19] == b"MATLAB 5.0 MAT-file"


def test_marker_records_parameters_and_counts(tiny_releases: Path) -> None:
    marker = json.loads((tiny_releases / CUHK03_RELEASE_DIR / MARKER_NAME).read_text())
    assert marker["params"]["seed"] == 0 and marker["params"]["size"]["train_ids"] == 16
    assert set(marker["counts"]) == {"cuhk03-labeled", "cuhk03-detected"}
    assert marker["counts"]["cuhk03-labeled"]["query_images"] == 32


def test_regeneration_is_a_no_op_and_real_data_is_never_overwritten(tmp_path: Path) -> None:
    path = make_synthetic("dukemtmcreid", tmp_path, size="tiny")
    marker = path / MARKER_NAME
    stamp = marker.stat().st_mtime_ns
    assert make_synthetic("dukemtmcreid", tmp_path, size="tiny") == path
    assert marker.stat().st_mtime_ns == stamp
    (tmp_path / MARKET_DIR).mkdir()  # a (pretend) real release
    with pytest.raises(AEAError, match="is not a generated dataset"):
        make_synthetic("market1501", tmp_path, size="tiny")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp dir left behind


def test_sizes_by_name_or_counts() -> None:
    assert resolve_size("tiny") is SYNTHETIC_SIZES["tiny"]
    custom = resolve_size({"train_ids": 5, "test_ids": 7, "train_imgs_per_cam": [1, 1]})
    assert custom == SyntheticSize(train_ids=5, test_ids=7, train_imgs_per_cam=(1, 1))
    for bad in ("huge", {"train_ids": 0, "test_ids": 3}, {"trainids": 3}, {"train_ids": 3, "test_ids": 3,
                                                                          "test_imgs_per_cam": (1, 1)}):
        with pytest.raises(AEAError):
            resolve_size(bad)
    with pytest.raises(AEAError, match="layout"):
        make_synthetic("market1501", "/nonexistent", size="tiny", layout="np")


def test_market_scale_plan_has_market1501s_exact_counts():
    """The paper-profile rehearsal's data: exactly the release's 751 / 12,936 train, 750 / 3,368 query and
    15,913 gallery images (+ 3,819 junk), every query with a match in another camera."""
    from collections import Counter

    from aea.data.synthetic import SYNTHETIC_SIZES, _folder_plan

    _, shots = _folder_plan("market1501", SYNTHETIC_SIZES["market-scale"], 6, 0)
    folders = Counter((s.folder, s.pid == -1) for s in shots)
    assert folders == {("bounding_box_train", False): 12936, ("query", False): 3368,
                       ("bounding_box_test", False): 15913, ("bounding_box_test", True): 3819}
    assert len({s.pid for s in shots if s.folder == "bounding_box_train"}) == 751
    assert len({s.pid for s in shots if s.folder == "query"}) == 750
    assert len({s.key for s in shots}) == len(shots)
    gallery_cams: dict[int, set[int]] = {}
    for s in shots:
        if s.folder == "bounding_box_test":
            gallery_cams.setdefault(s.pid, set()).add(s.cam)
    assert all(gallery_cams.get(s.pid, set()) - {s.cam} for s in shots if s.folder == "query")
