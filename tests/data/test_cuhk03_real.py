"""CUHK03 against the real protocol files (tests/data/real_cuhk03): the parser's official counts, the
generated files' form, the refusal of a config paired with another release, and the full-size release."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from aea.data import datasets, synthetic
from aea.data.datasets import (
    CUHK03_NP_DIR,
    CUHK03_RELEASE_DIR,
    DOCUMENTED_COUNTS,
    MARKER_NAME,
    cuhk03_config_name,
    load_dataset,
    observed_counts,
)
from aea.data.families import cuhk03_format
from aea.data.families.cuhk03_format import protocol_mat_bytes
from aea.data.synthetic import make_synthetic
from aea.errors import AEAError

REAL = Path(__file__).parent / "real_cuhk03"
SETTINGS = ("labeled", "detected")


def real_config(setting: str) -> Path:
    return REAL / cuhk03_config_name(setting)


def mat5_variables(data: bytes) -> list[bytes]:
    """The uncompressed bytes of each top-level variable of a MAT v5 file whose variables are all compressed."""
    assert data[124:128] == b"\x00\x01IM"  # version 0x0100, little-endian
    offset, variables = 128, []
    while offset < len(data):
        kind, size = struct.unpack("<II", data[offset:offset + 8])
        assert kind == 15  # miCOMPRESSED
        variables.append(zlib.decompress(data[offset + 8:offset + 8 + size]))
        offset += 8 + size
    return variables


# ----------------------------------------------------------------------------- the real files themselves


def test_the_real_files_are_the_published_ones() -> None:
    """What the tests below rely on, read straight from the files (also stated in real_cuhk03/README.md)."""
    for setting, n in (("labeled", 14096), ("detected", 14097)):
        mat = scipy.io.loadmat(real_config(setting))
        assert mat["filelist"].shape == (n, 1) and str(mat["filelist"][0, 0][0]) == "1_001_1_01.png"
        assert str(mat["filelist"][-1, 0][0]) == "5_049_2_10.png"
        assert int(mat["labels"].max()) == 1467 and len(np.unique(mat["labels"])) == 1467


# ----------------------------------------------------------------------------- parser: official counts


@pytest.fixture
def real_images_dir(tmp_path: Path):
    """images_dir(setting) -> a folder with an (empty) file for every name of the real filelist: the parser only
    lists the folder, so the split logic runs on the real protocol without 14,000 images."""

    def make(setting: str) -> Path:
        folder = tmp_path / f"images_{setting}"
        folder.mkdir()
        for name in cuhk03_format.read_protocol(real_config(setting))["filelist"]:
            (folder / name).touch()
        return folder

    return make


@pytest.mark.parametrize("setting", SETTINGS)
def test_parser_reads_the_real_protocol_into_the_official_counts(real_images_dir, setting: str) -> None:
    images = real_images_dir(setting)
    train, query, gallery, junk = cuhk03_format.parse_mat(real_config(setting), Path("cuhk-03.mat"), images)
    relabelled = datasets._relabel(train)
    assert observed_counts(relabelled, query, gallery, junk) == DOCUMENTED_COUNTS[f"cuhk03-{setting}"]
    expected = {"labeled": (7368, 1400, 5328), "detected": (7365, 1400, 5332)}[setting]
    assert (len(train), len(query), len(gallery)) == expected
    # train ids become 0..766 in the order of the original labels; query and gallery keep theirs (1..1467)
    assert sorted({r.pid for r in relabelled}) == list(range(767))
    order = sorted({(r.pid, old.pid) for r, old in zip(relabelled, train)})
    assert [old for _, old in order] == sorted(old for _, old in order)
    first = min(train, key=lambda r: r.pid)  # label 1: 1_001_1_01.png .. (train_idx starts 1, 2, 3, ...)
    assert first.pid == 1 and dict(zip(train, relabelled))[first].pid == 0
    assert {r.pid for r in query} == {r.pid for r in gallery} and len({r.pid for r in query}) == 700
    assert not {r.pid for r in train} & {r.pid for r in query}
    assert all(1 <= r.pid <= 1467 for r in query + gallery)
    # camid is the view in the file name: every test identity is queried once from each view
    assert sum(r.camid == 0 for r in query) == sum(r.camid == 1 for r in query) == 700
    assert all(int(Path(r.path).name.split("_")[2]) - 1 == r.camid for r in train + query + gallery)


def test_the_two_real_settings_swap_one_identity_between_train_and_test() -> None:
    """A quirk of the real files, found here: labeled trains on label 1202 and tests on 1390, detected the other
    way round (767 train ids each all the same); whatever reads them must not assume one identity split."""
    splits = {s: cuhk03_format.read_protocol(real_config(s)) for s in SETTINGS}
    train = {s: set(splits[s]["labels"][splits[s]["train"]].tolist()) for s in SETTINGS}
    assert train["labeled"] - train["detected"] == {1202} and train["detected"] - train["labeled"] == {1390}


@pytest.mark.parametrize("setting", SETTINGS)
def test_a_real_protocol_with_another_releases_mat_is_refused(copy_of, setting: str) -> None:
    """The real config beside a (tiny, generated) cuhk-03.mat: one line naming both files and the first
    listed image the .mat lacks."""
    root = copy_of(CUHK03_RELEASE_DIR)
    shutil.copy(real_config(setting), root / cuhk03_config_name(setting))
    with pytest.raises(AEAError) as err:
        load_dataset(f"cuhk03-{setting}", root, check_counts=False)
    message = str(err.value)
    assert "\n" not in message
    held = {p.name for p in (root / CUHK03_RELEASE_DIR / f"images_{setting}").glob("*.png")}
    listed = cuhk03_format.read_protocol(real_config(setting))["filelist"].tolist()
    missing = [n for n in listed if n not in held]
    config = (root / cuhk03_config_name(setting)).resolve()
    assert message.startswith(f"{missing[0]} (listed in {config}) is not in ")
    assert str((root / CUHK03_RELEASE_DIR / "cuhk-03.mat").resolve()) in message
    assert f"{len(missing)} listed image(s) missing, {len(held - set(listed))} unlisted" in message
    assert "do not belong together, re-download them" in message


def test_a_config_listing_fewer_images_than_the_mat_is_refused(copy_of) -> None:
    """Names that all exist are not enough: the .mat holding images the config does not list is another
    release (the real filelists name every image of the real .mat)."""
    root = copy_of(CUHK03_RELEASE_DIR, cuhk03_config_name("labeled"))
    config = root / cuhk03_config_name("labeled")
    fields = {k: v for k, v in scipy.io.loadmat(config).items() if not k.startswith("__")}
    last = len(fields["filelist"])  # 1-based index of the entry to drop
    dropped = str(fields["filelist"][-1, 0][0])
    fields["filelist"] = fields["filelist"][:-1]
    for key in ("labels", "camId"):
        fields[key] = fields[key][:-1]
    for key in ("train_idx", "query_idx", "gallery_idx"):
        fields[key] = fields[key][fields[key][:, 0] != last]
    config.write_bytes(protocol_mat_bytes(fields))
    with pytest.raises(AEAError) as err:
        load_dataset("cuhk03-labeled", root, check_counts=False)
    message = str(err.value)
    assert f"holds 1 image(s) {config.resolve()} does not list (e.g. {dropped})" in message
    assert "0 listed image(s) missing, 1 unlisted" in message and "do not belong together" in message


def test_extraction_of_another_mat_replaces_the_previous_images(copy_of, tmp_path: Path) -> None:
    """A re-extraction (a new cuhk-03.mat) leaves none of the old .mat's images behind to be counted."""
    root = copy_of(CUHK03_RELEASE_DIR, *(cuhk03_config_name(s) for s in SETTINGS))
    load_dataset("cuhk03-labeled", root)
    images = root / CUHK03_RELEASE_DIR / "images_labeled"
    (images / "9_999_1_01.png").write_bytes((images / "1_001_1_01.png").read_bytes())  # an old .mat's image
    other = tmp_path / "seed1"
    make_synthetic("cuhk03", other, size="tiny", seed=1)
    shutil.copy(other / CUHK03_RELEASE_DIR / "cuhk-03.mat", root / CUHK03_RELEASE_DIR / "cuhk-03.mat")
    for s in SETTINGS:
        shutil.copy(other / cuhk03_config_name(s), root / cuhk03_config_name(s))
    split = load_dataset("cuhk03-labeled", root, check_counts=False)
    assert not (images / "9_999_1_01.png").exists()
    assert len(split.train) + len(split.query) + len(split.gallery) == len(list(images.glob("*.png")))


# ----------------------------------------------------------------------------- generated files: the real form


@pytest.mark.parametrize("setting", SETTINGS)
def test_generated_protocol_files_have_the_real_ones_form(tiny_releases: Path, setting: str) -> None:
    real, generated = real_config(setting), tiny_releases / cuhk03_config_name(setting)
    # MATLAB's view: the same variables in the same order, each a double (filelist a cell) of shape N x 1
    real_vars, gen_vars = scipy.io.whosmat(real), scipy.io.whosmat(generated)
    assert [(name, cls) for name, _, cls in gen_vars] == [(name, cls) for name, _, cls in real_vars] == [
        ("camId", "double"), ("filelist", "cell"), ("labels", "double"), ("query_idx", "double"),
        ("gallery_idx", "double"), ("train_idx", "double")]
    assert all(shape[1] == 1 and shape[0] > 0 for _, shape, _ in real_vars + gen_vars)
    # a loader's view: the same stored types (uint8 camId, uint16 the rest), N x 1, cells of 1 x n char
    a, b = scipy.io.loadmat(real), scipy.io.loadmat(generated)
    for name, _, _ in real_vars:
        assert (a[name].dtype, a[name].ndim, a[name].shape[1]) == (b[name].dtype, b[name].ndim, b[name].shape[1])
    assert a["camId"].dtype == np.uint8 and a["labels"].dtype == a["train_idx"].dtype == np.uint16
    assert a["filelist"].dtype == b["filelist"].dtype == object
    assert a["filelist"][0, 0].dtype.kind == b["filelist"][0, 0].dtype.kind == "U"
    assert a["filelist"][0, 0].shape == b["filelist"][0, 0].shape == (1,)
    # indexing with them works as common loaders do it
    names = [str(v[0]) for v in b["filelist"][:, 0]]
    assert all(names[int(i) - 1] for i in b["query_idx"][:, 0])
    assert real.read_bytes()[:20] == generated.read_bytes()[:20] == b"MATLAB 5.0 MAT-file,"
    assert len(mat5_variables(generated.read_bytes())) == len(mat5_variables(real.read_bytes())) == 6


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_protocol_writer_reproduces_matlabs_variables_byte_for_byte(setting: str) -> None:
    """Given the real files' values, the writer's variables (decompressed) equal MATLAB's byte for byte:
    element layout, storage types, cell elements, padding. Only the deflate stream and header date differ."""
    real = real_config(setting).read_bytes()
    mat = scipy.io.loadmat(real_config(setting))
    written = protocol_mat_bytes({k: mat[k] for k in cuhk03_format.PROTOCOL_STORAGE})
    assert mat5_variables(written) == mat5_variables(real)
    assert written[116:128] == real[116:128]


def test_generated_cuhk03_mat_has_the_classic_testsets_as_matlab_stores_them(tiny_releases: Path) -> None:
    """testsets: a 20 x 1 cell (HDF5 (1, 20) references) of 100 x 2 doubles (HDF5 (2, 100)), rows [camera
    pair, identity] 1-based; the tiny size has only 32 identities, so every set holds all 32."""
    with h5py.File(tiny_releases / CUHK03_RELEASE_DIR / "cuhk-03.mat", "r") as f:
        assert sorted(k for k in f if not k.startswith("#")) == ["detected", "labeled", "testsets"]
        assert f["testsets"].shape == (1, 20) and f["testsets"].attrs["MATLAB_class"] == b"cell"
        people = [f[ref].shape[1] for ref in f["labeled"][0]]  # identities per camera pair
        sets = []
        for ref in f["testsets"][0]:  # as torchreid reads them: mat[ref][:].T
            ds = f[ref]
            assert ds.shape == (2, 32) and ds.dtype == np.float64 and ds.attrs["MATLAB_class"] == b"double"
            rows = [tuple(int(v) for v in row) for row in ds[()].T]
            assert all(1 <= pair <= 5 and 1 <= pid <= people[pair - 1] for pair, pid in rows)
            assert rows == sorted(set(rows))
            sets.append(rows)
        assert all(s == sets[0] for s in sets)  # 32 of 32 identities: the same set twenty times
    testsets = cuhk03_format.make_testsets(cuhk03_format.plan_people(synthetic.resolve_size("smoke"), 0), 0)
    assert len(testsets) == 20 and all(t.shape == (100, 2) for t in testsets)
    assert len({t.tobytes() for t in testsets}) == 20


# ----------------------------------------------------------------------------- full size


def test_the_full_plan_has_the_real_releases_people() -> None:
    splits = {s: cuhk03_format.read_protocol(real_config(s)) for s in SETTINGS}
    people = cuhk03_format.people_from_protocols(splits)
    assert len(people) == 1467
    assert [sum(p.pair == k for p in people) for k in range(5)] == [843, 440, 77, 58, 49]
    assert sum(len(p.columns["labeled"]) for p in people) == 14096
    assert sum(len(p.columns["detected"]) for p in people) == 14097
    for s in SETTINGS:  # exactly the file lists, nothing more
        names = sorted(cuhk03_format.file_name(p, c) for p in people for c in p.columns[s])
        assert names == sorted(splits[s]["filelist"])
    assert cuhk03_format.release_counts(splits) == {f"cuhk03-{s}": DOCUMENTED_COUNTS[f"cuhk03-{s}"] for s in SETTINGS}


def test_full_size_needs_cuhk03_and_the_real_configs(tmp_path: Path) -> None:
    for kwargs, text in ((dict(name="cuhk03"), "give size full together with --protocol-dir"),
                         (dict(name="market1501", protocol_dir=REAL), "exists for CUHK03 only"),
                         (dict(name="cuhk03", protocol_dir=tmp_path), "protocol_config_labeled.mat is missing")):
        with pytest.raises(AEAError, match=text):
            make_synthetic(root=tmp_path / "root", size="full", **kwargs)
    with pytest.raises(AEAError, match="no --protocol-dir otherwise"):
        make_synthetic("cuhk03", tmp_path / "root", size="tiny", protocol_dir=REAL)
    assert not (tmp_path / "root").exists()


@pytest.mark.full
def test_full_size_release_has_the_official_counts_in_both_forms(tmp_path: Path) -> None:
    """Minutes and ~1.5 GB: `pytest tests/data -m full`. The real configs apply unchanged to the generated
    release, and both forms pass the count check against the marker and, without it, against the
    documented counts of the official release."""
    for layout, marker_dir in (("mat", CUHK03_RELEASE_DIR), ("np", CUHK03_NP_DIR)):
        root = tmp_path / layout
        make_synthetic("cuhk03", root, size="full", layout=layout, protocol_dir=REAL)
        if layout == "mat":
            for s in SETTINGS:
                assert (root / cuhk03_config_name(s)).read_bytes() == real_config(s).read_bytes()
        for s in SETTINGS:
            split = load_dataset(f"cuhk03-{s}", root)
            counts = observed_counts(split.train, split.query, split.gallery, 0)
            assert counts == DOCUMENTED_COUNTS[f"cuhk03-{s}"]
        (root / marker_dir / MARKER_NAME).unlink()  # now it is held to the official release's numbers
        for s in SETTINGS:
            assert load_dataset(f"cuhk03-{s}", root).num_train_pids == 767
