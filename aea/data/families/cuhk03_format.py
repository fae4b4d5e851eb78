"""CUHK03's files, read and written: cuhk-03.mat (MATLAB -v7.3, HDF5), the new protocol's configs (MATLAB v5),
and the generated release in either layout (the .mat, or CUHK03-NP's folders). The family's descriptor and
its hooks are ``aea.data.families.cuhk03``; this module holds what needs numpy, PIL, h5py and scipy.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from aea.data.families.base import Parsed, Record
from aea.data.families.cuhk03 import FAMILY as CUHK03
from aea.data.families.folders import SPLIT_FOLDERS
from aea.data.synthetic import (
    _S_DETECTED,
    _S_IMAGE,
    _S_PLAN,
    _S_TESTSETS,
    DEFAULT_OCCLUSION,
    FULL,
    HEIGHT,
    WIDTH,
    SyntheticSize,
    _counts,
    _draw_range,
    camera_styles,
    make_identities,
    render,
)
from aea.errors import AEAError
from aea.io import atomic_path, read_json, write_json
from aea.seeding import derive_seed

if TYPE_CHECKING:  # h5py and scipy.io load when a .mat is read or written
    import h5py

log = logging.getLogger(__name__)

VARIANTS = CUHK03.variants  # labeled, detected
FILE_NAME = CUHK03.mat_names  # campair_pid_view_index.png, 1-based


# ----------------------------------------------------------------------------- reading (the .mat release)


_PROTOCOL_FIELDS = ("filelist", "labels", "train_idx", "query_idx", "gallery_idx")


def _is_empty(ds: h5py.Dataset) -> bool:
    """MATLAB -v7.3 stores [] as uint64 [0 0] flagged MATLAB_empty; other writers use 0-size arrays."""
    return bool(ds.attrs.get("MATLAB_empty", 0)) or ds.size == 0 or ds.ndim < 2


def _pair_cell(f: h5py.File, ref: h5py.Reference, mat_path: Path) -> np.ndarray:
    """One camera pair's cell as a (num_ids, 10) array of references (MATLAB num_ids x 10, stored transposed)."""
    ds = f[ref]
    if _is_empty(ds):
        return np.empty((0, 10), dtype=object)
    cell = ds[()]
    if cell.ndim != 2 or 10 not in cell.shape:
        raise AEAError(f"{mat_path}: a camera-pair cell has shape {cell.shape}, expected num_ids x 10; "
                       "use the original cuhk-03.mat")
    return cell.T if cell.shape[0] == 10 else cell


def _read_image(f: h5py.File, ref: h5py.Reference, mat_path: Path) -> np.ndarray | None:
    """An H x W x 3 uint8 image from its reference (stored as 3 x W x H); None for an empty cell entry."""
    if not ref:
        return None
    ds = f[ref]
    if _is_empty(ds) or ds.ndim != 3:
        return None
    img = ds[()].T
    if img.shape[2] != 3:
        raise AEAError(f"{mat_path}: an image has shape {img.shape}, expected H x W x 3; use the original cuhk-03.mat")
    return np.ascontiguousarray(img, dtype=np.uint8)


def extract(mat_path: Path, setting: str, images_dir: Path) -> None:
    """Write the setting's images as PNGs named campair_pid_view_index.png, once per version of the .mat."""
    stat = mat_path.stat()
    stamp = {"mat_size": stat.st_size, "mat_mtime_ns": stat.st_mtime_ns, "setting": setting}
    stamp_path = images_dir / ".aea_extracted.json"
    if stamp_path.is_file() and read_json(stamp_path) == stamp:
        return
    log.info("extracting CUHK03 %s images from %s to %s (once)", setting, mat_path, images_dir)
    import h5py

    try:
        f = h5py.File(mat_path, "r")
    except OSError as e:
        raise AEAError(f"cannot read {mat_path} as a MATLAB v7.3 (HDF5) file ({e}); "
                       "re-download cuhk03_release") from None
    try:
        images_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AEAError(f"cannot create {images_dir} ({e.strerror}); the CUHK03 images are extracted there once: "
                       f"make {images_dir.parent} writable") from None
    with f:
        if setting not in f:
            raise AEAError(f"{mat_path} has no field '{setting}'; "
                           "use the original cuhk-03.mat (fields labeled, detected)")
        try:
            for stale in images_dir.glob("*.png"):  # another .mat's: the folder must hold exactly this one's
                stale.unlink()
            for leftover in images_dir.glob(".*.png.*.tmp"):  # an extraction killed mid-write (aea.io.atomic_path)
                if FILE_NAME.fullmatch(leftover.name[1:].rsplit(".", 2)[0]):
                    leftover.unlink()
            _write_pngs(f, setting, mat_path, images_dir)
        except OSError as e:
            raise AEAError(f"extracting {mat_path} into {images_dir} failed ({e}); "
                           "re-download the .mat if it is truncated, or free disk space") from None
    write_json(stamp_path, stamp)


def _write_pngs(f: h5py.File, setting: str, mat_path: Path, images_dir: Path) -> None:
    cells = [_pair_cell(f, ref, mat_path) for ref in np.asarray(f[setting][()]).ravel()]
    total = sum(c.size for c in cells)
    with tqdm(total=total, desc=f"extracting CUHK03 {setting}", unit="img", disable=None) as bar:
        for pair, cell in enumerate(cells, 1):
            for person, row in enumerate(cell, 1):
                for col, ref in enumerate(row):
                    bar.update()
                    img = _read_image(f, ref, mat_path)
                    if img is not None:
                        name = f"{pair}_{person:03d}_{1 if col < 5 else 2}_{col + 1:02d}.png"
                        with atomic_path(images_dir / name) as tmp:
                            Image.fromarray(img).save(tmp, format="PNG")


def mat_string(value: object) -> str:
    """A MATLAB char row as scipy.io.loadmat returns it (a 1-element array; empty for ''), or a str."""
    flat = np.asarray(value).ravel()
    return str(flat[0]) if flat.size else ""


_PROTOCOL_HINT = "use cuhk03_new_protocol_config_*.mat from zhunzhong07/person-re-ranking (evaluation/data/CUHK03)"


def read_protocol(path: Path) -> dict[str, np.ndarray]:
    """The split of one protocol config file; see ``protocol_split``."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except (OSError, ValueError, NotImplementedError, scipy.io.matlab.MatReadError) as e:
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise AEAError(f"cannot read {path} ({type(e).__name__}: {first_line}); {_PROTOCOL_HINT}") from None
    return protocol_split(mat, path)


def protocol_split(mat: Mapping[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """filelist (names), labels, and train/query/gallery as 0-based indices into filelist, from a protocol
    config's variables as scipy.io.loadmat returns them; ``path`` names the file in errors."""
    for field in _PROTOCOL_FIELDS:
        if field not in mat:
            raise AEAError(f"{path} has no field '{field}'; {_PROTOCOL_HINT}")
    fields = {"filelist": np.array([mat_string(v) for v in np.asarray(mat["filelist"]).ravel()]),
              "labels": np.asarray(mat["labels"]).ravel().astype(np.int64)}
    for split in SPLIT_FOLDERS:
        idx = np.asarray(mat[f"{split}_idx"]).ravel().astype(np.int64) - 1
        if idx.size and (idx.min() < 0 or idx.max() >= len(fields["filelist"])):
            raise AEAError(f"{path}: {split}_idx points outside filelist (1..{len(fields['filelist'])}); "
                           f"{_PROTOCOL_HINT}")
        fields[split] = idx
    if len(fields["labels"]) != len(fields["filelist"]):
        raise AEAError(f"{path}: labels ({len(fields['labels'])}) and filelist ({len(fields['filelist'])}) "
                       f"differ in length; {_PROTOCOL_HINT}")
    return fields


def parse_mat(config: Path, mat_path: Path, images_dir: Path) -> Parsed:
    """Records of the protocol's three index lists; camid is the view (1 or 2) in the file name.

    The config's filelist must name exactly the setting's images in the .mat
    (the real ones do: 14,096 labeled, 14,097 detected), so a config paired
    with another release's cuhk-03.mat is refused even where the names overlap.
    """
    protocol = read_protocol(config)
    listed = protocol["filelist"]
    held = {name for name in os.listdir(images_dir) if name.endswith(".png")}
    missing = [name for name in listed if name not in held]
    extra = sorted(held - set(listed.tolist()))
    if missing or extra:
        what = (f"{missing[0]} (listed in {config}) is not in {mat_path}" if missing else
                f"{mat_path} holds {len(extra)} image(s) {config} does not list (e.g. {extra[0]})")
        raise AEAError(f"{what}: {len(missing)} listed image(s) missing, {len(extra)} unlisted; the config and the "
                       ".mat do not belong together, re-download them")
    splits = []
    for split in SPLIT_FOLDERS:
        records = []
        for i in protocol[split]:
            name = listed[i]
            match = FILE_NAME.fullmatch(name)
            if match is None:
                raise AEAError(f"{config}: filelist entry {name!r} does not parse as campair_pid_view_index.png; "
                               "use the original protocol config")
            records.append(Record(str(images_dir / name), int(protocol["labels"][i]), int(match[3]) - 1))
        splits.append(sorted(records))
    return splits[0], splits[1], splits[2], 0


# ----------------------------------------------------------------------------- writing (generated releases)

# share of identities per camera pair in the real release (843, 440, 77, 58, 49 of 1,467)
_CUHK03_PAIR_SHARE = np.array([843, 440, 77, 58, 49], dtype=np.float64) / 1467
_MAT73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2015 HDF5 schema 1.00 ."
_MAT5_HEADER = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2015"
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
class Person:
    label: int  # 1-based, over camera pairs in order (the protocol's ``labels``)
    pair: int  # 0-based camera pair
    index: int  # 1-based index within the pair (row of the pair's cell)
    test: bool
    columns: Mapping[str, tuple[int, ...]]  # setting -> filled cell columns (0-4 view 1, 5-9 view 2)


def plan_people(size: SyntheticSize, seed: int) -> list[Person]:
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
        people.append(Person(i + 1, int(pair), seen[pair], i in test,
                                    {"labeled": tuple(labeled), "detected": tuple(detected)}))
    return people


def people_from_protocols(splits: Mapping[str, Mapping[str, np.ndarray]]) -> list[Person]:
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
            match = FILE_NAME.fullmatch(name)
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
    return [Person(label, where[label][0] - 1, where[label][1], label not in trained,
                          {s: tuple(sorted(columns[s].get(label, ()))) for s in splits}) for label in labels]


_Painter = Callable[[str, Person, int], np.ndarray]  # (setting, person, cell column) -> H x W x 3 image


def _painter(people: list[Person], occlusion: float, seed: int) -> _Painter:
    """Images on demand (a full-size release does not fit in memory). Detected boxes are shifted,
    rescaled and cropped renderings of the labeled image's very scene."""
    identities = make_identities(len(people), seed)
    cams = camera_styles(10, seed)  # camera 2 * pair + view

    def paint(setting: str, p: Person, col: int) -> np.ndarray:
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


def file_name(p: Person, col: int) -> str:
    """The protocol's file naming: campair_pid_view_imageindex.png (1-based)."""
    return f"{p.pair + 1}_{p.index:03d}_{col // 5 + 1}_{col + 1:02d}.png"


def _protocol(people: list[Person], setting: str, seed: int) -> dict[str, np.ndarray]:
    """The variables of cuhk03_new_protocol_config_<setting>.mat in the real files' order, shapes and
    storage types (as scipy.io.loadmat returns them): one query per test person and view."""
    rng = np.random.default_rng(derive_seed(seed, _S_PLAN, 2 + VARIANTS.index(setting)))
    files, labels, cam_ids, train, query, gallery = [], [], [], [], [], []
    for p in people:
        first = len(files) + 1
        for col in p.columns[setting]:
            files.append(file_name(p, col))
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


def make_testsets(people: list[Person], seed: int) -> list[np.ndarray]:
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


def _write_mat(path: Path, people: list[Person], paint: _Painter, testsets: list[np.ndarray]) -> None:
    """cuhk-03.mat as MATLAB -v7.3 writes it: HDF5, cells as object references, arrays stored transposed.

    MATLAB is column-major, so an H x W x 3 image is stored as an HDF5 (3, W, H)
    dataset, a num_ids x 10 cell as (10, num_ids), the 5 x 1 cells of camera
    pairs as (1, 5), the 20 x 1 ``testsets`` as (1, 20) and each 100 x 2 test
    set as (2, 100); an empty cell entry is MATLAB's empty double: uint64
    [0, 0] with attribute MATLAB_empty = 1.
    """
    import h5py

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
        total = sum(len(p.columns[s]) for p in people for s in VARIANTS)
        with tqdm(total=total, desc="generating cuhk-03.mat", unit="img", leave=False, disable=None) as bar:
            for setting in VARIANTS:
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


def release_counts(splits: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, int]]:
    counts, setting_of = {}, {s.variant: s.name for s in CUHK03.settings}
    for s, split in splits.items():
        ids = {k: len(set(split["labels"][split[k]].tolist())) for k in ("train", "query")}
        counts[setting_of[s]] = _counts(len(split["train"]), ids["train"], len(split["query"]), ids["query"],
                                        len(split["gallery"]), 0)
    return counts


@dataclass(frozen=True)
class Release:
    """What one CUHK03 generation writes: its people, the protocol configs' bytes and what they parse to."""

    people: list[Person]
    configs: Mapping[str, bytes]  # setting -> cuhk03_new_protocol_config_<setting>.mat
    splits: Mapping[str, Mapping[str, np.ndarray]]  # setting -> read_protocol's fields
    occlusion: float


def generated_release(size: SyntheticSize, seed: int) -> Release:
    import scipy.io

    people = plan_people(size, seed)
    configs = {s: protocol_mat_bytes(_protocol(people, s, seed)) for s in VARIANTS}
    splits = {s: protocol_split(scipy.io.loadmat(io.BytesIO(configs[s])), Path(CUHK03.config_name(s)))
              for s in VARIANTS}
    return Release(people, configs, splits, size.occlusion)


def full_release(protocol_dir: Path) -> tuple[dict[str, dict[str, str]], Release]:
    """(the marker's size parameters, the release): images for exactly the file lists of the real protocol
    configs, which are kept byte for byte (the parameters name them by their SHA-256)."""
    paths = {s: protocol_dir / CUHK03.config_name(s) for s in VARIANTS}
    for path in paths.values():
        if not path.is_file():
            raise AEAError(f"{path} is missing; the full-size CUHK03 is built from the real protocol configs "
                           "(zhunzhong07/person-re-ranking, evaluation/data/CUHK03; "
                           "the repository has a copy in tests/data/real_cuhk03)")
    splits = {s: read_protocol(paths[s]) for s in VARIANTS}
    release = Release(people_from_protocols(splits), {s: paths[s].read_bytes() for s in VARIANTS}, splits,
                      DEFAULT_OCCLUSION)
    return {FULL: {s: hashlib.sha256(release.configs[s]).hexdigest() for s in VARIANTS}}, release


def write(layout: str, out: Path, release: Release, seed: int) -> dict[str, dict[str, int]]:
    """``mat``: out/cuhk-03.mat + out/<config>.mat (moved to the root later); ``np``: out/<setting>/<split folders>."""
    paint = _painter(release.people, release.occlusion, seed)
    if layout == "mat":
        _write_mat(out / CUHK03.mat, release.people, paint, make_testsets(release.people, seed))
        for s in VARIANTS:
            (out / CUHK03.config_name(s)).write_bytes(release.configs[s])
        return release_counts(release.splits)
    by_name = {file_name(p, col): (p, col) for p in release.people for s in VARIANTS for col in p.columns[s]}
    for s in VARIANTS:
        split = release.splits[s]
        for key, folder in SPLIT_FOLDERS.items():
            (out / s / folder).mkdir(parents=True)
            for i in tqdm(split[key], desc=f"generating cuhk03-np {s} {folder}", unit="img", leave=False,
                          disable=None):
                p, col = by_name[split["filelist"][i]]
                np_name = f"{p.label:04d}_c{col // 5 + 1}_{col + 1}.png"
                Image.fromarray(paint(s, p, col)).save(out / s / folder / np_name, format="PNG")
    return release_counts(release.splits)


