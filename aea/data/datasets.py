"""Loading an evaluation setting from its release's own on-disk layout, whatever the dataset.

``load_dataset(name, root)`` returns a ``Split`` of ``Record(path, pid, camid)``. Where the files of setting
``name`` are under the data root ``root`` and how they are parsed is its family's (``aea.data.families``: one
module per release, e.g. Market-1501's folders, CUHK03's .mat or CUHK03-NP folders); this module does what is
the same for all of them.

Records are sorted by path; training pids are relabelled 0..N-1 in the order of
the original pids; query/gallery keep the original pids; camid is 0-based.
Junk (pid -1, Market's) is dropped, distractors (pid 0) stay in the gallery.
The parsed split is cached beside the data (``aea_split.json``, relative paths)
and reused while the listing's names, sizes and mtimes are unchanged; the first
load also decodes every image fully, so a corrupt or truncated file is named up
front (the cache is written only after that, so the check is paid once per listing).
Counts are checked against the release's documented numbers (its family's module), or against the
marker ``aea_synthetic.json`` a generated dataset carries.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from aea.data.families import SETTINGS, family_of
from aea.data.families.base import COUNT_KEYS as COUNT_KEYS
from aea.data.families.base import MARKER_NAME as MARKER_NAME
from aea.data.families.base import Located, Parsed, fix_root
from aea.data.families.base import Record as Record
from aea.data.families.cuhk03 import FAMILY as _CUHK03
from aea.data.families.folders import SPLIT_FOLDERS as SPLIT_FOLDERS
from aea.errors import AEAError
from aea.io import read_json, write_json

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: written after every image decoded fully (1: after reading headers only)

# Read off the registry (aea.data.families) for the modules and tests that import them from here.
MARKET_DIR, DUKE_DIR = family_of("market1501").folder, family_of("dukemtmcreid").folder
CUHK03_RELEASE_DIR, CUHK03_NP_DIR, cuhk03_config_name = _CUHK03.folder, _CUHK03.np_folder, _CUHK03.config_name
NUM_CAMS = {name: s.cameras for name, s in SETTINGS.items()}
#: The releases' documented numbers (gallery_images after dropping junk), from each family's module.
DOCUMENTED_COUNTS: dict[str, dict[str, int]] = {name: s.counts._asdict() for name, s in SETTINGS.items()}


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


def _read_cache(path: Path, name: str, signature: str) -> Parsed | None:
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


def _locate(name: str, root: Path) -> Located:
    return family_of(name).locate(SETTINGS[name], root)


def _checked_root(name: str, root: str | os.PathLike) -> Path:
    """``root`` made absolute, with ``name`` a known setting and ``root`` an existing folder."""
    if name not in SETTINGS:
        raise AEAError(f"unknown dataset {name!r}; choose one of {', '.join(SETTINGS)}")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise AEAError(f"data root {root} does not exist; {fix_root(root)}")
    return root


def data_signature(name: str, root: str | os.PathLike) -> str:
    """16 hex digits identifying the data of setting ``name`` under data root ``root``: a hash of its listing
    (every file's name, size and mtime; for the CUHK03 .mat release the .mat and protocol config too), so
    regenerated, re-extracted or edited data gives another value. A directory scan, no image read (the .mat
    release's images are extracted on the first call, as ``load_dataset`` does);
    ``load_dataset`` puts the same value in ``Split.signature``."""
    root = _checked_root(name, root)
    located = _locate(name, root)
    return _signature(located.folders, located.files)[:16]


def load_dataset(name: str, root: str | os.PathLike, *, check_counts: bool = True) -> Split:
    """Parse setting ``name`` (one of ``aea.names.DATASETS``) under data root ``root``; see the module docstring."""
    root = _checked_root(name, root)
    source = _locate(name, root)
    signature = _signature(source.folders, source.files)
    cached = _read_cache(source.cache, name, signature)
    if cached is not None:
        train, query, gallery, junk = cached
        log.info("%s: split read from cache %s", name, source.cache)
    else:
        train, query, gallery, junk = source.parse()
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
