"""Market-1501's layout, which DukeMTMC-reID and CUHK03-NP share: three folders of images whose file names
carry the person id and the camera::

    <release folder>/{bounding_box_train,query,bounding_box_test}/0002_c1s1_000451_03.jpg

Person id -1 is junk (dropped everywhere), 0 a distractor (kept in the gallery only). A release in this
layout is a ``FolderFamily``: its module declares the folder, the file names and the official counts, and
the parser and the generator (``aea.data.synthetic``) need nothing else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aea.data.families.base import MARKER_NAME, DatasetFamily, Located, Parsed, Record, Setting, fix_root
from aea.errors import AEAError

if TYPE_CHECKING:
    import numpy as np

    from aea.data.synthetic import SyntheticSize

SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


@dataclass(frozen=True)
class FileNames:
    """How a folder release names its images: ``pattern`` matches a whole name, its groups the person id and the
    1-based camera; ``example`` is shown when a name does not match (its extension is the images')."""

    pattern: re.Pattern[str]
    example: str

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.example)[1]


#: The generator's file name of one image: (person id as written: "-1" or 4 digits, 1-based camera, frame
#: number, the generator's random stream, to draw any other part from) -> file name matching the pattern.
NameFunction = Callable[[str, int, int, "np.random.Generator"], str]


@dataclass(frozen=True, kw_only=True)
class FolderFamily(DatasetFamily):
    """A release in Market-1501's layout, with one setting (named like the family)."""

    names: FileNames
    file_name: NameFunction  # what the generator names an image
    distractors: str = "images"  # how the release has distractors: "images" (Market's 0000_ images: background
    #   or a fragment of someone), "identities" (Duke's gallery-only people, two images each) or "none"
    junk: bool = False  # the release has junk images (Market's -1_: badly cropped boxes, dropped by the parser)

    def __post_init__(self) -> None:
        if len(self.settings) != 1 or self.settings[0].name != self.name:
            raise ValueError(f"{self.name}: a folder family has one setting, named like the family")
        if self.distractors not in ("images", "identities", "none"):
            raise ValueError(f"{self.name}: distractors must be images, identities or none")

    @property
    def setting(self) -> Setting:
        return self.settings[0]

    def locate(self, setting: Setting, root: Path) -> Located:
        dataset_dir, name = root / self.folder, setting.name
        if not dataset_dir.is_dir():
            raise AEAError(f"{name} not found: expected {dataset_dir}/ with {', '.join(SPLIT_FOLDERS.values())}; "
                           f"put the release there, {fix_root(root, name)}")
        return Located(dataset_dir, dataset_dir / "aea_split.json", dataset_dir / MARKER_NAME,
                       f"{name} folders", require_folders(dataset_dir), [],
                       lambda: parse_folders(dataset_dir, self.names, setting.cameras))

    def generate(self, out: Path, layout: str, size: SyntheticSize | None, seed: int,
                 full: Any = None) -> dict[str, dict[str, int]]:
        from aea.data.synthetic import write_folder_release

        assert size is not None
        return write_folder_release(self, out, size, seed)


def require_folders(dataset_dir: Path) -> list[Path]:
    folders = [dataset_dir / f for f in SPLIT_FOLDERS.values()]
    for folder in folders:
        if not folder.is_dir():
            raise AEAError(f"wrong layout: {folder} is missing (expected {', '.join(SPLIT_FOLDERS.values())} "
                           f"inside {dataset_dir}); unpack the release there unchanged")
    return folders


def parse_folder(folder: Path, names: FileNames, cameras: int) -> list[Record]:
    """Every image of one folder with its original pid; other files (Thumbs.db, hidden) are ignored."""
    records = []
    suffix = names.suffix
    for name in sorted(os.listdir(folder)):
        if name.startswith(".") or not name.endswith(suffix):
            continue
        path = folder / name
        match = names.pattern.fullmatch(name)
        if match is None:
            raise AEAError(f"cannot parse file name {path}: expected names like {names.example}; rename or remove it")
        pid, cam = int(match[1]), int(match[2])
        if not 1 <= cam <= cameras:
            raise AEAError(f"{path}: camera c{cam} is outside c1..c{cameras}; rename or remove it")
        records.append(Record(str(path), pid, cam - 1))
    return records


def parse_folders(dataset_dir: Path, names: FileNames, cameras: int) -> Parsed:
    """(train, query, gallery, junk dropped): junk (pid -1) goes everywhere, distractors (0) stay in the gallery."""
    train, query, gallery = (parse_folder(dataset_dir / SPLIT_FOLDERS[k], names, cameras)
                             for k in ("train", "query", "gallery"))
    junk = sum(r.pid == -1 for r in train + query + gallery)
    keep = lambda records, drop: [r for r in records if r.pid not in drop]  # noqa: E731
    return keep(train, (-1, 0)), keep(query, (-1,)), keep(gallery, (-1,)), junk
