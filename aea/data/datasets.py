"""Parsers of the four evaluation settings, from each release's own on-disk layout.

``load_dataset(name, root)`` returns a ``Split`` of ``Record(path, pid, camid)``.
Layouts under the data root ``root``::

    Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/0002_c1s1_000451_03.jpg
    DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/0005_c2_f0046985.jpg
    cuhk03-np/{labeled,detected}/{bounding_box_train,query,bounding_box_test}/0001_c1_1.png   (preferred)
    cuhk03_release/cuhk-03.mat + cuhk03_new_protocol_config_{labeled,detected}.mat           (else)

Records are sorted by path; training pids are relabelled 0..N-1 in the order of
the original pids; query/gallery keep the original pids; camid is 0-based.
Market's junk (pid -1) is dropped, its distractors (pid 0) stay in the gallery.
The parsed split is cached beside the data (``aea_split.json``, relative paths)
and reused while the listing's names, sizes and mtimes are unchanged; the first
load also decodes every image fully, so a corrupt or truncated file is named up
front (the cache is written only after that, so the check is paid once per listing).
Counts are checked against the release's documented numbers, or against the
marker ``aea_synthetic.json`` a generated dataset carries.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from aea.errors import AEAError
from aea.io import atomic_path, read_json, write_json
from aea.names import DATASETS

if TYPE_CHECKING:  # h5py and scipy.io load only for CUHK03's .mat files (0.4 s of every other process's start)
    import h5py

log = logging.getLogger(__name__)

MARKET_DIR = "Market-1501-v15.09.15"
DUKE_DIR = "DukeMTMC-reID"
CUHK03_NP_DIR = "cuhk03-np"
CUHK03_RELEASE_DIR = "cuhk03_release"
CUHK03_MAT = "cuhk-03.mat"
CUHK03_SETTINGS = ("labeled", "detected")
CUHK03_IMAGES = {s: f"images_{s}" for s in CUHK03_SETTINGS}  # the .mat release's images, extracted once (per setting)
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
NUM_CAMS = {"market1501": 6, "dukemtmcreid": 8, "cuhk03-labeled": 2, "cuhk03-detected": 2}
MARKER_NAME = "aea_synthetic.json"
CACHE_VERSION = 2  # 2: written after every image decoded fully (1: after reading headers only)

COUNT_KEYS = ("train_images", "train_ids", "query_images", "query_ids", "gallery_images", "junk_images")
# The releases' documented numbers (gallery_images after dropping junk).
#  Market-1501: bounding_box_test holds 19,732 files = 13,115 of the 750 test ids + 2,798 distractors (0000_,
#    kept) + 3,819 junk (-1_, dropped); 15,913 remain, as torchreid reports.
#  DukeMTMC-reID: no junk; the gallery's 17,661 include 408 gallery-only distractor ids.
#  CUHK03-NP (767/700, zhunzhong07/person-re-ranking CUHK03-NP/README.md): labeled 7,368/1,400/5,328,
#    detected 7,365/1,400/5,332.
DOCUMENTED_COUNTS: dict[str, dict[str, int]] = {
    "market1501": dict(zip(COUNT_KEYS, (12936, 751, 3368, 750, 15913, 3819))),
    "dukemtmcreid": dict(zip(COUNT_KEYS, (16522, 702, 2228, 702, 17661, 0))),
    "cuhk03-labeled": dict(zip(COUNT_KEYS, (7368, 767, 1400, 700, 5328, 0))),
    "cuhk03-detected": dict(zip(COUNT_KEYS, (7365, 767, 1400, 700, 5332, 0))),
}


def _fix_root(root: Path, name: str | None = None) -> str:
    dataset = f" --dataset {name}" if name else ""
    return (f"set AEA_DATA (or data_root=DIR for `aea train`, --data-root for `aea evaluate`, --root for "
            f"`aea data`) to the folder holding the datasets, or generate stand-ins with "
            f"`aea data make-synthetic{dataset} --root {root}`")


class Record(NamedTuple):
    path: str  # absolute
    pid: int
    camid: int  # 0-based


@dataclass
class Split:
    """One evaluation setting. ``root``: the dataset directory the records were read from; ``signature``:
    ``data_signature`` of the files they were read from (runs record it)."""

    name: str
    root: str
    train: list[Record]
    query: list[Record]
    gallery: list[Record]
    num_train_pids: int
    num_cams: int
    signature: str = ""


_Parsed = tuple[list[Record], list[Record], list[Record], int]  # train, query, gallery, junk dropped


def cuhk03_config_name(setting: str) -> str:
    """File name of the new-protocol (767/700) split of one CUHK03 setting, kept at the data root."""
    return f"cuhk03_new_protocol_config_{setting}.mat"


# ----------------------------------------------------------------------------- folder releases


@dataclass(frozen=True)
class _FolderFormat:
    pattern: re.Pattern[str]  # groups: pid, camera (1-based)
    suffix: str
    example: str
    num_cams: int


_FORMATS = {
    "market1501": _FolderFormat(re.compile(r"(-1|\d+)_c(\d+)s\d+_\d+_\d+\.jpg"), ".jpg",
                                "0002_c1s1_000451_03.jpg", NUM_CAMS["market1501"]),
    "dukemtmcreid": _FolderFormat(re.compile(r"(\d+)_c(\d+)_f\d+\.jpg"), ".jpg", "0005_c2_f0046985.jpg",
                                  NUM_CAMS["dukemtmcreid"]),
    "cuhk03-np": _FolderFormat(re.compile(r"(-1|\d+)_c(\d+)_\d+\.png"), ".png", "0001_c1_1.png",
                               NUM_CAMS["cuhk03-labeled"]),  # both CUHK03 settings: the two views of a pair
}


def _require_folders(dataset_dir: Path) -> list[Path]:
    folders = [dataset_dir / f for f in SPLIT_FOLDERS.values()]
    for folder in folders:
        if not folder.is_dir():
            raise AEAError(f"wrong layout: {folder} is missing (expected {', '.join(SPLIT_FOLDERS.values())} "
                           f"inside {dataset_dir}); unpack the release there unchanged")
    return folders


def _parse_folder(folder: Path, fmt: _FolderFormat) -> list[Record]:
    """Every image of one folder with its original pid; other files (Thumbs.db, hidden) are ignored."""
    records = []
    for name in sorted(os.listdir(folder)):
        if name.startswith(".") or not name.endswith(fmt.suffix):
            continue
        path = folder / name
        match = fmt.pattern.fullmatch(name)
        if match is None:
            raise AEAError(f"cannot parse file name {path}: expected names like {fmt.example}; rename or remove it")
        pid, cam = int(match[1]), int(match[2])
        if not 1 <= cam <= fmt.num_cams:
            raise AEAError(f"{path}: camera c{cam} is outside c1..c{fmt.num_cams}; rename or remove it")
        records.append(Record(str(path), pid, cam - 1))
    return records


def _parse_folders(dataset_dir: Path, fmt: _FolderFormat) -> _Parsed:
    """(train, query, gallery, junk dropped): junk (pid -1) goes everywhere, distractors (0) stay in the gallery."""
    train, query, gallery = (_parse_folder(dataset_dir / SPLIT_FOLDERS[k], fmt) for k in ("train", "query", "gallery"))
    junk = sum(r.pid == -1 for r in train + query + gallery)
    keep = lambda records, drop: [r for r in records if r.pid not in drop]  # noqa: E731
    return keep(train, (-1, 0)), keep(query, (-1,)), keep(gallery, (-1,)), junk


# ----------------------------------------------------------------------------- CUHK03 (.mat release)

CUHK03_FILE_NAME = re.compile(r"(\d+)_(\d+)_([12])_(\d+)\.png")  # campair_pid_view_index.png, 1-based
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


def _extract_cuhk03(mat_path: Path, setting: str, images_dir: Path) -> None:
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
                if CUHK03_FILE_NAME.fullmatch(leftover.name[1:].rsplit(".", 2)[0]):
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


def _parse_cuhk03_mat(config: Path, mat_path: Path, images_dir: Path) -> _Parsed:
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
            match = CUHK03_FILE_NAME.fullmatch(name)
            if match is None:
                raise AEAError(f"{config}: filelist entry {name!r} does not parse as campair_pid_view_index.png; "
                               "use the original protocol config")
            records.append(Record(str(images_dir / name), int(protocol["labels"][i]), int(match[3]) - 1))
        splits.append(sorted(records))
    return splits[0], splits[1], splits[2], 0


# ----------------------------------------------------------------------------- cache, checks


def _signature(folders: list[Path], files: list[Path]) -> str:
    """Hash of every entry's name, size and mtime: any added, removed or rewritten file changes it."""
    h = hashlib.sha256()
    for folder in folders:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:  # a folder of the release that cannot be listed (permissions)
            raise AEAError(f"cannot list {folder} ({e.strerror}); the dataset's folders must be readable by this "
                           f"user: fix their permissions (e.g. chmod -R u+rX {folder.parent})") from None
        for entry in entries:
            st = _stat(Path(entry.path))
            h.update(f"{folder.name}/{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for path in files:
        st = _stat(path)
        h.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _stat(path: Path) -> os.stat_result:
    """``path``'s stat (through symbolic links); a broken link or an unreadable entry is an AEAError naming it."""
    try:
        return path.stat()
    except OSError as e:
        broken = path.is_symlink() and not path.exists()
        error = FileNotFoundError(f"a broken symbolic link to {os.readlink(path)}") if broken else e
        raise unreadable_image(path, error) from None


def _read_cache(path: Path, name: str, signature: str) -> _Parsed | None:
    try:
        cache = read_json(path)
    except (OSError, ValueError):
        return None
    if cache.get("version") != CACHE_VERSION or cache.get("dataset") != name or cache.get("signature") != signature:
        return None
    base = path.parent
    try:
        splits = [[Record(str(base / rel), int(pid), int(cam)) for rel, pid, cam in cache[k]] for k in SPLIT_FOLDERS]
        return splits[0], splits[1], splits[2], int(cache["junk_images"])
    except (KeyError, TypeError, ValueError):  # damaged: parse again
        return None


def _write_cache(path: Path, name: str, signature: str, splits: tuple[list[Record], list[Record], list[Record]],
                 junk: int) -> None:
    base = path.parent
    cache = {"version": CACHE_VERSION, "dataset": name, "signature": signature, "junk_images": junk}
    for key, records in zip(SPLIT_FOLDERS, splits):
        cache[key] = [[os.path.relpath(r.path, base), r.pid, r.camid] for r in records]
    try:
        write_json(path, cache)
    except OSError as e:  # a read-only data root still loads, just without the cache
        log.warning("could not write the split cache %s (%s); parsing again next time", path, e)


IMAGE_ERRORS = (OSError, SyntaxError, ValueError)  # what PIL raises for a missing, truncated or foreign file


def unreadable_image(path: str | os.PathLike, error: Exception) -> AEAError:
    detail = str(error).splitlines()[0] if str(error) else ""
    return AEAError(
        f"unreadable image {path} ({type(error).__name__}: {detail}); replace it with a good copy (re-download or "
        "re-extract the release; generated data: delete the dataset folder and rerun `aea data make-synthetic`), "
        "or delete the file and pass check_counts=false (`aea train ... check_counts=false`, "
        "`aea evaluate --run DIR check_counts=false`, `aea data check --no-check-counts`)")


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")  # 16-bit grey (PNG, TIFF)
NO_8_BIT_READING = {"I": "32-bit integer pixels", "F": "32-bit float pixels"}  # no one way to map them to 0..255


def check_image_mode(im: Image.Image, path: str | os.PathLike) -> None:
    """Refuse an image whose pixels have no one 8-bit reading (32-bit integer or float; a 16-bit PNG that Pillow
    opens as mode I is read as 16-bit)."""
    if im.mode in NO_8_BIT_READING and not (im.mode == "I" and im.format == "PNG"):
        raise AEAError(f"image {path} has pixel mode {im.mode} ({NO_8_BIT_READING[im.mode]}), which has no one "
                       "8-bit reading; save it as 8-bit RGB or greyscale (PNG or JPEG) and rerun")


def rgb_image(im: Image.Image, path: str | os.PathLike) -> Image.Image:
    """``im`` as 8-bit RGB. 16-bit grey is scaled to 8 bits (its high byte: an 8-bit value v saved as 16-bit
    v * 257 comes back as v; Pillow's own conversion clips it to white), every 8-bit mode (grey, palette, LA,
    RGBA, CMYK, ...) goes through Pillow's conversion, a mode with no 8-bit reading is refused (AEAError)."""
    check_image_mode(im, path)
    if im.mode in SIXTEEN_BIT_MODES or im.mode == "I":
        grey = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return im.convert("RGB")


def _check_images(records: list[Record]) -> None:
    """Decode every image to its last byte: a truncated or corrupt file is named now, not mid-training or at
    evaluation (a header check passes a JPEG cut short); so is a pixel mode with no 8-bit reading."""
    for r in tqdm(records, desc="decoding images", unit="img", leave=False, disable=None):
        try:
            with Image.open(r.path) as im:
                im.load()
                check_image_mode(im, r.path)
        except IMAGE_ERRORS as e:
            raise unreadable_image(r.path, e) from None


def _relabel(train: list[Record]) -> list[Record]:
    """Training pids -> 0..N-1 in the order of the original pids."""
    label = {pid: i for i, pid in enumerate(sorted({r.pid for r in train}))}
    return [Record(r.path, label[r.pid], r.camid) for r in train]


def observed_counts(train: list[Record], query: list[Record], gallery: list[Record], junk: int) -> dict[str, int]:
    values = (len(train), len({r.pid for r in train}), len(query), len({r.pid for r in query}), len(gallery), junk)
    return dict(zip(COUNT_KEYS, values))


def _expected_counts(name: str, marker: Path) -> tuple[dict[str, int], str, str]:
    """(counts, what they come from, how to fix a mismatch): the marker's for generated data, else the release's."""
    if not marker.is_file():
        return (DOCUMENTED_COUNTS[name], "the documented counts of the official release",
                "re-download/re-extract the release (partial or modified copies are refused), "
                "or set check_counts=false (e.g. `aea train ... check_counts=false`) to use it as it is")
    try:
        counts = read_json(marker)["counts"][name]
        return {k: int(counts[k]) for k in COUNT_KEYS}, f"the counts in {marker}", \
            (f"delete {marker.parent} and regenerate it with `aea data make-synthetic`, or set check_counts=false "
             "(`aea train ... check_counts=false`, `aea evaluate --run DIR check_counts=false`) to use it as it is")
    except (OSError, ValueError, KeyError, TypeError):
        raise AEAError(f"unreadable marker {marker}; regenerate the dataset with `aea data make-synthetic`") from None


# ----------------------------------------------------------------------------- entry point


@dataclass(frozen=True)
class _Source:
    """Where one setting's files, split cache and generation marker are."""

    dataset_dir: Path  # shown in messages; Split.root
    cache: Path
    marker: Path
    kind: str  # for the log


def _locate(name: str, root: Path) -> tuple[_Source, list[Path], list[Path], Callable[[], _Parsed]]:
    """(source, folders and files whose listing signs the cache, parse function)."""
    if name in ("market1501", "dukemtmcreid"):
        dataset_dir = root / (MARKET_DIR if name == "market1501" else DUKE_DIR)
        if not dataset_dir.is_dir():
            raise AEAError(f"{name} not found: expected {dataset_dir}/ with {', '.join(SPLIT_FOLDERS.values())}; "
                           f"put the release there, {_fix_root(root, name)}")
        folders = _require_folders(dataset_dir)
        source = _Source(dataset_dir, dataset_dir / "aea_split.json", dataset_dir / MARKER_NAME, f"{name} folders")
        return source, folders, [], lambda: _parse_folders(dataset_dir, _FORMATS[name])
    setting = name.split("-", 1)[1]
    np_dir = root / CUHK03_NP_DIR
    if np_dir.is_dir():
        dataset_dir = np_dir / setting
        if not dataset_dir.is_dir():
            raise AEAError(f"wrong layout: {dataset_dir} is missing (expected {', '.join(CUHK03_SETTINGS)} inside "
                           f"{np_dir}); unpack CUHK03-NP there unchanged")
        folders = _require_folders(dataset_dir)
        source = _Source(dataset_dir, dataset_dir / "aea_split.json", np_dir / MARKER_NAME, "CUHK03-NP folders")
        return source, folders, [], lambda: _parse_folders(dataset_dir, _FORMATS["cuhk03-np"])
    release = root / CUHK03_RELEASE_DIR
    mat_path, config = release / CUHK03_MAT, root / cuhk03_config_name(setting)
    if not release.is_dir() and not config.exists():
        raise AEAError(f"{name} not found: expected {np_dir}/{setting}/ (CUHK03-NP) or {mat_path} with {config}; "
                       f"put the release there, {_fix_root(root, name)}")
    for path in (mat_path, config):
        if not path.is_file():
            raise AEAError(f"wrong layout: {path} is missing (CUHK03 needs {CUHK03_RELEASE_DIR}/{CUHK03_MAT} and "
                           f"{cuhk03_config_name(setting)} in {root})")
    images_dir = release / CUHK03_IMAGES[setting]
    _extract_cuhk03(mat_path, setting, images_dir)
    source = _Source(release, release / f"aea_split_{setting}.json", release / MARKER_NAME,
                     "cuhk-03.mat + protocol config")
    return source, [images_dir], [mat_path, config], lambda: _parse_cuhk03_mat(config, mat_path, images_dir)


def _checked_root(name: str, root: str | os.PathLike) -> Path:
    """``root`` made absolute, with ``name`` a known setting and ``root`` an existing folder."""
    if name not in DATASETS:
        raise AEAError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise AEAError(f"data root {root} does not exist; {_fix_root(root)}")
    return root


def data_signature(name: str, root: str | os.PathLike) -> str:
    """16 hex digits identifying the data of setting ``name`` under data root ``root``: a hash of its listing
    (every file's name, size and mtime; for the CUHK03 .mat release the .mat and protocol config too), so
    regenerated, re-extracted or edited data gives another value. A directory scan, no image read (the .mat
    release's images are extracted on the first call, as ``load_dataset`` does);
    ``load_dataset`` puts the same value in ``Split.signature``."""
    root = _checked_root(name, root)
    _, folders, files, _ = _locate(name, root)
    return _signature(folders, files)[:16]


def load_dataset(name: str, root: str | os.PathLike, *, check_counts: bool = True) -> Split:
    """Parse setting ``name`` (one of ``aea.names.DATASETS``) under data root ``root``; see the module docstring."""
    root = _checked_root(name, root)
    source, folders, files, parse = _locate(name, root)
    signature = _signature(folders, files)
    cached = _read_cache(source.cache, name, signature)
    if cached is not None:
        train, query, gallery, junk = cached
        log.info("%s: split read from cache %s", name, source.cache)
    else:
        train, query, gallery, junk = parse()
        _check_images(train + query + gallery)
        train = _relabel(train)
        _write_cache(source.cache, name, signature, (train, query, gallery), junk)
    counts = observed_counts(train, query, gallery, junk)
    if check_counts:
        expected, what, fix = _expected_counts(name, source.marker)
        diffs = [f"{k} {counts[k]} (expected {expected[k]})" for k in COUNT_KEYS if counts[k] != expected[k]]
        if diffs:
            raise AEAError(f"{name} at {source.dataset_dir} does not match {what}: {', '.join(diffs)}; {fix}")
    log.info("%s from %s (%s): %d train images of %d ids, %d query, %d gallery, %d junk dropped", name,
             source.dataset_dir, source.kind, counts["train_images"], counts["train_ids"], counts["query_images"],
             counts["gallery_images"], junk)
    return Split(name, str(source.dataset_dir), train, query, gallery, counts["train_ids"], NUM_CAMS[name],
                 signature[:16])
