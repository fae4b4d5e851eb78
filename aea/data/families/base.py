"""What a dataset family declares, and the hooks every family has.

A *family* is one release: one download (or one generation) under the data root, holding one or more
evaluation *settings* (CUHK03's labeled and detected come from one ``cuhk-03.mat``). Its descriptor says where
the release lives, how its files are named, how many cameras and images the official release has, and
carries two hooks: ``locate`` (where a setting's files are and how to parse them; ``aea.data.datasets``
loads through it) and ``generate`` (write a generated copy in the release's own on-disk format;
``aea.data.synthetic.make_synthetic`` writes through it).

Kept to the standard library: ``aea.names`` reads the registry before anything imports numpy or torch, so
the hooks import the heavy modules they need when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from aea.errors import AEAError

if TYPE_CHECKING:
    from aea.data.synthetic import SyntheticSize

MARKER_NAME = "aea_synthetic.json"  # a generated release's parameters and counts (the parser checks against them)
DEFAULT_LAYOUT = "mat"  # a release's own layout, recorded in every marker (`aea data --layout`'s default)


class Counts(NamedTuple):
    """A setting's counts as the official release documents them (gallery images after dropping junk)."""

    train_images: int
    train_ids: int
    query_images: int
    query_ids: int
    gallery_images: int
    junk_images: int = 0


COUNT_KEYS = Counts._fields


class Record(NamedTuple):
    path: str  # absolute
    pid: int
    camid: int  # 0-based


Parsed = tuple[list[Record], list[Record], list[Record], int]  # train, query, gallery, junk images dropped


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One evaluation setting: its name (``--dataset``, results/ folders, table rows), its label in the tables,
    its cameras and the official release's counts."""

    name: str
    label: str
    cameras: int
    counts: Counts
    variant: str = ""  # the release's own word for the setting, where it holds several (CUHK03: labeled, detected)


@dataclass(frozen=True)
class Located:
    """Where one setting's files are and how to parse them (a family's ``locate``)."""

    dataset_dir: Path  # shown in messages; Split.root
    cache: Path  # the parsed split's cache
    marker: Path  # MARKER_NAME of a generated copy
    kind: str  # for the log
    folders: list[Path]  # folders and files whose listing signs the cache (and the runs' data signature)
    files: list[Path]
    parse: Callable[[], Parsed]


def fix_root(root: Path, name: str | None = None) -> str:
    """How to point aea at the data (or make stand-ins), ending a 'not found' message."""
    dataset = f" --dataset {name}" if name else ""
    return (f"set AEA_DATA (or data_root=DIR for `aea train`, --data-root for `aea evaluate`, --root for "
            f"`aea data`) to the folder holding the datasets, or generate stand-ins with "
            f"`aea data make-synthetic{dataset} --root {root}`")


@dataclass(frozen=True, kw_only=True)
class DatasetFamily:
    """One release and its settings (in table order). Subclasses implement the hooks for their layout:
    ``aea.data.families.folders.FolderFamily`` for Market-1501's, ``aea.data.families.cuhk03`` for CUHK03's."""

    name: str  # the marker's "dataset"; `aea data make-synthetic --dataset` takes it or any setting's name
    title: str  # in messages
    folder: str  # the release's folder under the data root
    settings: tuple[Setting, ...]
    layouts: tuple[str, ...] = (DEFAULT_LAYOUT,)  # what `aea data make-synthetic --layout` may write
    has_full_size: bool = False  # `--size full`: generated at the official size from the real file lists

    def locate(self, setting: Setting, root: Path) -> Located:
        """Setting ``setting``'s files under data root ``root``; AEAError when missing or misplaced."""
        raise NotImplementedError

    def release_dir(self, layout: str) -> str:
        """The folder (under the data root) the generator writes in ``layout``."""
        return self.folder

    def root_files(self, layout: str) -> tuple[str, ...]:
        """Files of the release that sit at the data root, beside its folder (CUHK03's protocol configs)."""
        return ()

    def derived_entries(self) -> tuple[str, ...]:
        """Entries the parser adds inside the release folder (regenerating it may replace them)."""
        return ()

    def full_size(self, protocol_dir: Path) -> tuple[object, Any]:
        """(the marker's size parameters, what ``generate`` takes as ``full``) for ``--size full``."""
        raise AEAError(f"size 'full' does not exist for {self.name}")

    def generate(self, out: Path, layout: str, size: SyntheticSize | None, seed: int,
                 full: Any = None) -> dict[str, dict[str, int]]:
        """Write a generated copy of the release into the empty folder ``out`` (its files meant for the data root
        too: ``root_files``); return each setting's counts (``COUNT_KEYS``), which the marker records.
        ``size`` is None when ``full`` (from ``full_size``) says what to write."""
        raise NotImplementedError

