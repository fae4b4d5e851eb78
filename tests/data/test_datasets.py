"""Parsers on generated copies of every release layout: counts, relabelling, junk, cache, count validation."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from aea.data import datasets
from aea.data.datasets import (
    COUNT_KEYS,
    CUHK03_NP_DIR,
    CUHK03_RELEASE_DIR,
    DUKE_DIR,
    MARKER_NAME,
    MARKET_DIR,
    load_dataset,
    observed_counts,
)
from aea.data.families import cuhk03_format, folders


def marker_counts(dataset_dir: Path, name: str) -> dict[str, int]:
    return json.loads((dataset_dir / MARKER_NAME).read_text())["counts"][name]


def split_counts(split: datasets.Split, junk: int) -> dict[str, int]:
    return observed_counts(split.train, split.query, split.gallery, junk)


def jpgs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.jpg"))


# ----------------------------------------------------------------------------- Market-1501


def test_market_counts_match_the_files_and_the_marker(tiny_releases: Path) -> None:
    split = load_dataset("market1501", tiny_releases)
    ddir = tiny_releases / MARKET_DIR
    expected = marker_counts(ddir, "market1501")
    files = {k: jpgs(ddir / f) for k, f in datasets.SPLIT_FOLDERS.items()}
    junk = sum(n.startswith("-1_") for n in files["gallery"])
    assert split_counts(split, junk) == expected
    # independent of the parser: file counts, with the 4 junk images of the tiny size dropped
    assert junk == 4
    assert len(split.train) == len(files["train"]) == 49
    assert len(split.query) == len(files["query"]) == 32
    assert len(split.gallery) == len(files["gallery"]) - junk == 36
    assert split.num_train_pids == 16 and split.num_cams == 6
    assert split.root == str(ddir.resolve())


def test_market_records_are_sorted_absolute_and_relabelled_in_pid_order(tiny_releases: Path) -> None:
    split = load_dataset("market1501", tiny_releases)
    for records in (split.train, split.query, split.gallery):
        assert [r.path for r in records] == sorted(r.path for r in records)
        assert all(os.path.isabs(r.path) and os.path.isfile(r.path) for r in records)
    original = [int(Path(r.path).name.split("_")[0]) for r in split.train]
    order = sorted(set(original))
    assert [r.pid for r in split.train] == [order.index(p) for p in original]
    assert sorted({r.pid for r in split.train}) == list(range(16))
    # query/gallery keep the original pids, camid = c<n> - 1
    for r in split.query + split.gallery:
        name = Path(r.path).name
        assert int(name.split("_")[0]) == r.pid
        assert name.split("_")[1].startswith(f"c{r.camid + 1}s")


def test_market_junk_is_dropped_and_distractors_are_kept(tiny_releases: Path) -> None:
    split = load_dataset("market1501", tiny_releases)
    distractor_files = [n for n in jpgs(tiny_releases / MARKET_DIR / "bounding_box_test") if n.startswith("0000_")]
    assert all(r.pid != -1 for r in split.train + split.query + split.gallery)
    assert sum(r.pid == 0 for r in split.gallery) == len(distractor_files) == 4
    assert all(r.pid != 0 for r in split.query)
    assert {r.pid for r in split.query} <= {r.pid for r in split.gallery}


# ----------------------------------------------------------------------------- DukeMTMC-reID, CUHK03


def test_duke_counts_and_cameras(tiny_releases: Path) -> None:
    split = load_dataset("dukemtmcreid", tiny_releases)
    assert split_counts(split, 0) == marker_counts(tiny_releases / DUKE_DIR, "dukemtmcreid")
    assert split.num_cams == 8
    assert {r.camid for r in split.train + split.query + split.gallery} <= set(range(8))
    # the tiny size asks for 4 distractor images: 2 gallery-only identities
    gallery_only = {r.pid for r in split.gallery} - {r.pid for r in split.query}
    assert len(gallery_only) == 2
    assert all(re.fullmatch(r"\d{4}_c\d_f\d{7}\.jpg", Path(r.path).name) for r in split.gallery)


@pytest.mark.parametrize("setting", ["labeled", "detected"])
def test_cuhk03_from_the_mat_release(tiny_releases: Path, setting: str) -> None:
    name = f"cuhk03-{setting}"
    split = load_dataset(name, tiny_releases)
    release = tiny_releases / CUHK03_RELEASE_DIR
    assert split_counts(split, 0) == marker_counts(release, name)
    assert split.num_train_pids == 16 and split.num_cams == 2
    assert len(split.query) == 32  # one query per test identity and view
    assert {r.camid for r in split.query} == {0, 1}
    # every record is an extracted PNG named as in the protocol config
    config = cuhk03_format.read_protocol(tiny_releases / datasets.cuhk03_config_name(setting))
    listed = {config["filelist"][i] for k in ("train", "query", "gallery") for i in config[k]}
    records = split.train + split.query + split.gallery
    assert {Path(r.path).name for r in records} == listed
    assert all(Path(r.path).parent == release / f"images_{setting}" for r in records)
    for r in records:
        assert int(Path(r.path).name.split("_")[2]) - 1 == r.camid


def test_cuhk03_images_come_out_upright_and_bit_exact(tiny_releases: Path) -> None:
    """The .mat stores H x W x 3 as (3, W, H); the extracted PNG must be the H x W x 3 image."""
    split = load_dataset("cuhk03-labeled", tiny_releases)
    first = Path(split.train[0].path).name  # campair_pid_view_index.png
    pair, person, _, index = (int(v) for v in first[:-4].split("_"))
    with h5py.File(tiny_releases / CUHK03_RELEASE_DIR / "cuhk-03.mat", "r") as f:
        cell = f[f["labeled"][0, pair - 1]]
        assert cell.shape[0] == 10  # MATLAB num_ids x 10, stored transposed
        stored = f[cell[index - 1, person - 1]][()]
    assert stored.shape == (3, 64, 128)
    png = np.asarray(Image.open(split.train[0].path))
    assert png.shape == (128, 64, 3)
    np.testing.assert_array_equal(png, stored.T)


def test_cuhk03_detected_boxes_are_shifted_crops(tiny_releases: Path) -> None:
    labeled = load_dataset("cuhk03-labeled", tiny_releases)
    detected = load_dataset("cuhk03-detected", tiny_releases)
    sizes = {Image.open(r.path).size for r in detected.train}
    assert len(sizes) > 1 and all(w <= 64 and h <= 128 for w, h in sizes)
    assert {Image.open(r.path).size for r in labeled.train} == {(64, 128)}
    # the detector missed a few training boxes; the test protocol is complete in both
    assert len(detected.train) <= len(labeled.train)
    assert len(detected.query) == len(labeled.query)


@pytest.mark.parametrize("setting", ["labeled", "detected"])
def test_cuhk03_np_folders(tiny_np_root: Path, setting: str) -> None:
    name = f"cuhk03-{setting}"
    split = load_dataset(name, tiny_np_root)
    assert split_counts(split, 0) == marker_counts(tiny_np_root / CUHK03_NP_DIR, name)
    assert split.root == str((tiny_np_root / CUHK03_NP_DIR / setting).resolve())
    assert all(re.fullmatch(r"\d{4}_c[12]_\d+\.png", Path(r.path).name) for r in split.query)
    assert sorted({r.pid for r in split.train}) == list(range(split.num_train_pids))


def test_cuhk03_np_and_mat_give_the_same_split(tiny_releases: Path, tiny_np_root: Path) -> None:
    """Both layouts are written from one generation: same identities, cameras and image counts."""
    for setting in ("labeled", "detected"):
        a = load_dataset(f"cuhk03-{setting}", tiny_releases)
        b = load_dataset(f"cuhk03-{setting}", tiny_np_root)
        for x, y in ((a.train, b.train), (a.query, b.query), (a.gallery, b.gallery)):
            assert sorted((r.pid, r.camid) for r in x) == sorted((r.pid, r.camid) for r in y)


def test_cuhk03_np_is_preferred_over_the_mat(copy_of, tiny_np_root: Path, caplog) -> None:
    root = copy_of(CUHK03_RELEASE_DIR, *(datasets.cuhk03_config_name(s) for s in ("labeled", "detected")))
    shutil.copytree(tiny_np_root / CUHK03_NP_DIR, root / CUHK03_NP_DIR)
    with caplog.at_level(logging.INFO, logger="aea.data.datasets"):
        split = load_dataset("cuhk03-labeled", root)
    assert split.root == str((root / CUHK03_NP_DIR / "labeled").resolve())
    assert "CUHK03-NP folders" in caplog.text
    assert not (root / CUHK03_RELEASE_DIR / "images_labeled").exists()


def test_cuhk03_mat_with_zero_size_empties_and_num_ids_by_10_cells(tmp_path: Path) -> None:
    """Other writers store empty cells as 0-size arrays and cells as (num_ids, 10): both parse."""
    import scipy.io

    release = tmp_path / CUHK03_RELEASE_DIR
    release.mkdir()
    colours = {(1, 0): 10, (1, 5): 20, (2, 0): 30, (2, 5): 40}  # (person, column) -> grey level
    with h5py.File(release / "cuhk-03.mat", "w") as f:
        refs = f.create_group("#refs#")
        top = np.empty((1, 5), dtype=h5py.ref_dtype)
        for pair in range(5):
            people = 2 if pair == 0 else 0
            cell = np.empty((people, 10), dtype=h5py.ref_dtype)
            for person in range(people):
                for col in range(10):
                    grey = colours.get((person + 1, col))
                    data = np.zeros((0,), np.uint8) if grey is None else np.full((3, 4, 8), grey, np.uint8)
                    cell[person, col] = refs.create_dataset(f"i{pair}_{person}_{col}", data=data).ref
            top[0, pair] = refs.create_dataset(f"c{pair}", data=cell if people else np.zeros((0, 0))).ref
        f.create_dataset("labeled", data=top)
    files = np.empty((4, 1), dtype=object)
    files[:, 0] = ["1_001_1_01.png", "1_001_2_06.png", "1_002_1_01.png", "1_002_2_06.png"]
    scipy.io.savemat(tmp_path / datasets.cuhk03_config_name("labeled"), {
        "filelist": files, "labels": np.array([[1], [1], [2], [2]], float),
        "camId": np.array([[1], [2], [1], [2]], float), "train_idx": np.array([[1], [2]], float),
        "query_idx": np.array([[3]], float), "gallery_idx": np.array([[4]], float),
    })
    split = load_dataset("cuhk03-labeled", tmp_path, check_counts=False)
    assert [(r.pid, r.camid) for r in split.train] == [(0, 0), (0, 1)]
    assert [(r.pid, r.camid) for r in split.query + split.gallery] == [(2, 0), (2, 1)]
    pixels = [np.asarray(Image.open(r.path)) for r in split.train + split.query + split.gallery]
    assert [p.shape for p in pixels] == [(8, 4, 3)] * 4
    assert [int(p[0, 0, 0]) for p in pixels] == [10, 20, 30, 40]
    assert len(list((release / "images_labeled").glob("*.png"))) == 4  # only the 4 non-empty cells


# ----------------------------------------------------------------------------- cache


def test_split_cache_is_reused_and_invalidated_by_a_changed_listing(copy_of, monkeypatch) -> None:
    root = copy_of(MARKET_DIR)
    ddir = root / MARKET_DIR
    first = load_dataset("market1501", root)
    cache = json.loads((ddir / "aea_split.json").read_text())
    assert cache["train"][0] == [os.path.relpath(first.train[0].path, ddir), first.train[0].pid, first.train[0].camid]
    assert not any(os.path.isabs(rel) for rel, _, _ in cache["train"] + cache["query"] + cache["gallery"])

    def no_parse(*args):
        raise AssertionError("parsed again although the cache was valid")

    monkeypatch.setattr(folders, "parse_folders", no_parse)
    monkeypatch.setattr(datasets, "_check_images", no_parse)
    assert load_dataset("market1501", root) == first  # from the cache
    monkeypatch.undo()

    extra = ddir / "bounding_box_train" / "9999_c6s1_999999_00.jpg"
    shutil.copy(first.train[0].path, extra)
    second = load_dataset("market1501", root, check_counts=False)
    assert len(second.train) == len(first.train) + 1
    assert second.num_train_pids == first.num_train_pids + 1
    assert second.train[-1].pid == second.num_train_pids - 1  # pid 9999 is the largest: relabelled last


def test_moved_dataset_still_loads_from_its_cache(copy_of, tmp_path: Path) -> None:
    """Relative cache paths: a copied data root (same mtimes) resolves records under the new place."""
    root = copy_of(MARKET_DIR)
    load_dataset("market1501", root)
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)  # copytree keeps mtimes (copy2)
    split = load_dataset("market1501", moved)
    assert all(r.path.startswith(str(moved.resolve())) for r in split.train + split.query + split.gallery)


# ----------------------------------------------------------------------------- count validation


def test_a_real_dataset_with_other_counts_is_refused(copy_of, monkeypatch) -> None:
    root = copy_of(MARKET_DIR)
    (root / MARKET_DIR / MARKER_NAME).unlink()  # no marker: a "real" release, held to the documented numbers
    with pytest.raises(datasets.AEAError) as err:
        load_dataset("market1501", root)
    message = str(err.value)
    assert "\n" not in message
    assert "documented counts of the official release" in message
    assert "train_images 49 (expected 12936)" in message and "gallery_images 36 (expected 15913)" in message
    assert "junk_images 4 (expected 3819)" in message and "check_counts=false" in message
    assert load_dataset("market1501", root, check_counts=False).num_train_pids == 16
    tiny = dict(zip(COUNT_KEYS, (49, 16, 32, 16, 36, 4)))
    monkeypatch.setitem(datasets.DOCUMENTED_COUNTS, "market1501", tiny)
    assert len(load_dataset("market1501", root).gallery) == 36


def test_documented_counts_are_the_releases_numbers() -> None:
    market = datasets.DOCUMENTED_COUNTS["market1501"]
    assert market["gallery_images"] + market["junk_images"] == 19732  # files in bounding_box_test
    assert (market["train_images"], market["train_ids"], market["query_images"]) == (12936, 751, 3368)
    duke = datasets.DOCUMENTED_COUNTS["dukemtmcreid"]
    numbers = (duke["train_images"], duke["train_ids"], duke["query_images"], duke["gallery_images"])
    assert numbers == (16522, 702, 2228, 17661)
    for setting, numbers in (("labeled", (7368, 1400, 5328)), ("detected", (7365, 1400, 5332))):
        c = datasets.DOCUMENTED_COUNTS[f"cuhk03-{setting}"]
        assert (c["train_images"], c["query_images"], c["gallery_images"]) == numbers
        assert (c["train_ids"], c["query_ids"]) == (767, 700)


def test_a_generated_dataset_is_checked_against_its_marker(copy_of) -> None:
    root = copy_of(MARKET_DIR)
    victim = sorted((root / MARKET_DIR / "query").glob("*.jpg"))[0]
    victim.unlink()
    with pytest.raises(datasets.AEAError) as err:
        load_dataset("market1501", root)
    message = str(err.value)
    assert "query_images 31 (expected 32)" in message and MARKER_NAME in message and "make-synthetic" in message
    assert "\n" not in message
