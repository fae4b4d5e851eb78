"""Every bad input is one AEAError line that names the file (or folder) and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from aea.data import datasets
from aea.data.datasets import CUHK03_RELEASE_DIR, MARKET_DIR, load_dataset
from aea.errors import AEAError

CONFIGS = tuple(datasets.cuhk03_config_name(s) for s in ("labeled", "detected"))


def config_fields(path: Path) -> dict[str, np.ndarray]:
    """A protocol config's variables, ready to be damaged and written back with savemat."""
    return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}


def error_of(name: str, root: Path, **kw) -> str:
    with pytest.raises(AEAError) as err:
        load_dataset(name, root, **kw)
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_missing_root_says_how_to_point_at_data(tmp_path: Path) -> None:
    message = error_of("market1501", tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message
    assert "AEA_DATA" in message and "--data-root" in message and "aea data make-synthetic" in message


def test_missing_dataset_names_the_expected_folder(tmp_path: Path) -> None:
    message = error_of("dukemtmcreid", tmp_path)
    assert str(tmp_path.resolve() / "DukeMTMC-reID") in message and "make-synthetic" in message
    message = error_of("cuhk03-detected", tmp_path)
    assert "cuhk03-np/detected" in message and "cuhk-03.mat" in message


def test_unknown_dataset_name(tmp_path: Path) -> None:
    assert "market1501" in error_of("market", tmp_path)


def test_wrong_layout_names_the_missing_folder(copy_of) -> None:
    root = copy_of(MARKET_DIR)
    shutil.rmtree(root / MARKET_DIR / "query")
    message = error_of("market1501", root)
    assert "wrong layout" in message and str(root.resolve() / MARKET_DIR / "query") in message


def test_cuhk03_np_without_the_setting_folder(tmp_path: Path) -> None:
    (tmp_path / "cuhk03-np" / "labeled").mkdir(parents=True)
    message = error_of("cuhk03-detected", tmp_path)
    assert "cuhk03-np/detected is missing" in message


@pytest.mark.parametrize("content", [b"", b"this is not a jpeg", b"\xff\xd8\xff"])
def test_corrupt_image_is_named_on_first_load(copy_of, content: bytes) -> None:
    root = copy_of(MARKET_DIR)
    victim = sorted((root / MARKET_DIR / "bounding_box_test").glob("*.jpg"))[5]
    victim.write_bytes(content)
    message = error_of("market1501", root)
    assert f"unreadable image {victim.resolve()}" in message and "re-download" in message


def test_file_name_that_does_not_parse_is_named(copy_of) -> None:
    root = copy_of(MARKET_DIR)
    bad = root / MARKET_DIR / "bounding_box_train" / "holiday_photo.jpg"
    shutil.copy(next(bad.parent.glob("*.jpg")), bad)
    message = error_of("market1501", root)
    assert f"cannot parse file name {bad.resolve()}" in message and "0002_c1s1_000451_03.jpg" in message


def test_camera_outside_the_release_is_named(copy_of) -> None:
    root = copy_of(MARKET_DIR)
    bad = root / MARKET_DIR / "query" / "0001_c7s1_000001_00.jpg"
    shutil.copy(next(bad.parent.glob("*.jpg")), bad)
    assert "c7 is outside c1..c6" in error_of("market1501", root)


def test_non_image_files_are_ignored(copy_of) -> None:
    root = copy_of(MARKET_DIR)
    for folder in ("bounding_box_train", "bounding_box_test"):
        (root / MARKET_DIR / folder / "Thumbs.db").write_bytes(b"\x00" * 64)
        (root / MARKET_DIR / folder / ".DS_Store").write_bytes(b"\x00" * 64)
    assert len(load_dataset("market1501", root).train) == 49


def test_protocol_config_missing_a_field(copy_of) -> None:
    root = copy_of(CUHK03_RELEASE_DIR, *CONFIGS)
    config = root / CONFIGS[0]
    fields = config_fields(config)
    del fields["gallery_idx"]
    scipy.io.savemat(config, fields)
    message = error_of("cuhk03-labeled", root)
    assert f"{config.resolve()} has no field 'gallery_idx'" in message and "person-re-ranking" in message


def test_protocol_config_that_is_not_a_mat_file(copy_of) -> None:
    root = copy_of(CUHK03_RELEASE_DIR, *CONFIGS)
    (root / CONFIGS[1]).write_bytes(b"garbage" * 40)
    message = error_of("cuhk03-detected", root)
    assert f"cannot read {(root / CONFIGS[1]).resolve()}" in message


def test_protocol_config_indices_outside_the_filelist(copy_of) -> None:
    root = copy_of(CUHK03_RELEASE_DIR, *CONFIGS)
    config = root / CONFIGS[0]
    fields = config_fields(config)
    fields["query_idx"] = np.array([[len(fields["filelist"]) + 1]], float)
    scipy.io.savemat(config, fields)
    assert "query_idx points outside filelist" in error_of("cuhk03-labeled", root)


def test_cuhk03_mat_that_is_not_hdf5(copy_of) -> None:
    root = copy_of(CUHK03_RELEASE_DIR, *CONFIGS)
    mat = root / CUHK03_RELEASE_DIR / "cuhk-03.mat"
    mat.write_bytes(b"MATLAB 5.0 MAT-file, not the v7.3 release" * 10)
    message = error_of("cuhk03-labeled", root)
    assert f"cannot read {mat.resolve()} as a MATLAB v7.3 (HDF5) file" in message


def test_cuhk03_config_missing_beside_the_release(copy_of) -> None:
    root = copy_of(CUHK03_RELEASE_DIR, CONFIGS[0])
    message = error_of("cuhk03-detected", root)
    assert f"wrong layout: {root.resolve() / CONFIGS[1]} is missing" in message


def test_config_listing_an_image_the_mat_does_not_have(copy_of) -> None:
    root = copy_of(CUHK03_RELEASE_DIR, *CONFIGS)
    config = root / CONFIGS[0]
    fields = config_fields(config)
    fields["filelist"][0, 0] = np.array(["5_999_1_01.png"])
    scipy.io.savemat(config, fields)
    message = error_of("cuhk03-labeled", root)
    assert "5_999_1_01.png" in message and "cuhk-03.mat" in message and "do not belong together" in message


def test_unwritable_release_folder_for_the_extraction(copy_of, monkeypatch) -> None:
    root = copy_of(CUHK03_RELEASE_DIR, *CONFIGS)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    message = error_of("cuhk03-labeled", root)
    assert f"cannot create {root.resolve() / CUHK03_RELEASE_DIR / 'images_labeled'}" in message
    assert "writable" in message


def test_read_only_data_root_loads_without_a_cache(copy_of, monkeypatch, caplog) -> None:
    root = copy_of(MARKET_DIR)

    def refuse(path, obj):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(datasets, "write_json", refuse)
    assert len(load_dataset("market1501", root).query) == 32
    assert "could not write the split cache" in caplog.text
    assert not (root / MARKET_DIR / "aea_split.json").exists()
