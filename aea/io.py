"""Atomic file output: nothing half-written is ever left under a final name."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # a read-only or full folder: name the file the caller writes, not the temporary one
        raise OSError(e.errno, e.strerror, str(path)) from e
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as e:  # e.g. a full disk: name the file being written (a write to an open file names none)
            if e.filename is None and e.errno is not None:
                raise OSError(e.errno, e.strerror, str(path)) from e
            raise
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600; final files get the usual mode
        if _open_set is None:
            os.replace(tmp_path, path)
        else:
            _open_set.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


BACKUP_SUFFIX = ".aea-old"  # a file's version before the open file set replaced it (a hard link)


class _FileSet:
    """The files ``atomic_path`` replaced inside one ``file_set`` block, journaled (see ``file_set``)."""

    def __init__(self, journal: Path) -> None:
        self.journal, self.entries = journal, []

    @staticmethod
    def backup(path: Path) -> Path:
        return path.with_name(f".{path.name}{BACKUP_SUFFIX}")

    def replace(self, tmp: Path, path: Path) -> None:
        had_old = path.exists()
        if had_old:
            try:
                os.link(path, self.backup(path))
            except FileExistsError:  # from a write of this block: the version before the block is kept
                pass
            except OSError:  # a file system without hard links
                shutil.copy2(path, self.backup(path))
        if str(path) not in {entry["path"] for entry in self.entries}:
            self.entries.append({"path": str(path), "had_old": had_old})
            _write_json_now(self.journal, {"files": self.entries})
        os.replace(tmp, path)


_open_set: _FileSet | None = None


def _write_json_now(path: Path, obj: Any) -> None:
    """``write_json`` outside any open file set (the journal itself is not part of its set)."""
    global _open_set
    saved, _open_set = _open_set, None
    try:
        write_json(path, obj)
    finally:
        _open_set = saved


@contextlib.contextmanager
def file_set(journal: str | os.PathLike, prefix: str) -> Iterator[None]:
    """The files written through ``atomic_path`` in the block form one set: a kill or an error leaves the old set
    or the new one, never a mix (e.g. a new table beside the old claims and diff).

    Each file replaced is first kept as a hard link ``.<name>.aea-old`` and listed in ``journal``; the journal's
    removal at the end of the block is the commit. An error in the block restores the old set at once; a kill
    leaves the journal (its presence marks a set cut short), and the next ``file_set`` on it restores the old
    set first. Leftovers of writes whose names start with ``.<prefix>.`` in the journal's folder (temporary files,
    backups) are removed then too.
    """
    global _open_set
    journal = Path(journal)
    restore_file_set(journal, prefix)
    _open_set = _FileSet(journal)
    try:
        yield
    except BaseException:
        _open_set = None
        restore_file_set(journal, prefix)
        raise
    else:
        journal.unlink(missing_ok=True)  # the commit point: from here on the new set stands
        for entry in _open_set.entries:
            _FileSet.backup(Path(entry["path"])).unlink(missing_ok=True)
    finally:
        _open_set = None


def restore_file_set(journal: str | os.PathLike, prefix: str) -> None:
    """Put back the old set of a ``file_set`` cut short (its ``journal`` is still there), then remove the
    leftovers of its writes (``.<prefix>.*.tmp``, ``.<prefix>.*.aea-old``)."""
    journal = Path(journal)
    if journal.is_file():
        try:
            entries = read_json(journal)["files"]
        except (OSError, ValueError, KeyError, TypeError):  # cut short before its first entry was whole
            entries = []
        for entry in entries:
            path = Path(entry["path"])
            backup = _FileSet.backup(path)
            if entry["had_old"] and backup.exists():
                os.replace(backup, path)
            elif not entry["had_old"]:
                path.unlink(missing_ok=True)
        journal.unlink()
    folder = journal.parent
    if folder.is_dir():
        for leftover in [*folder.glob(f".{prefix}.*"), *folder.glob(f".{journal.name}.*.tmp")]:
            if leftover.name.endswith((".tmp", BACKUP_SUFFIX)):
                leftover.unlink(missing_ok=True)


def temp_dir_beside(target: Path) -> Path:
    """A new hidden folder beside ``target`` for a tree to be written in and then renamed onto ``target``; its name
    holds this host and process (``.<target>.<host>.<pid>.<random>``), so ``sweep_temp_dirs`` can tell the folder
    of a killed write from one being written."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{socket.gethostname()}.{os.getpid()}.", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; what is written there is meant to be shared
    return tmp


def sweep_temp_dirs(target: Path) -> None:
    """Remove the ``temp_dir_beside(target)`` folders whose process on this host has ended (a write killed before
    its rename); those of live processes and of other hosts are left alone."""
    prefix, host = f".{target.name}.", socket.gethostname()
    if not target.parent.is_dir():
        return
    for entry in target.parent.iterdir():
        parts = entry.name[len(prefix):].rsplit(".", 2) if entry.name.startswith(prefix) else []
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not _alive(int(parts[1])) \
                and entry.is_dir() and not entry.is_symlink():
            log.info("removing %s, left by an interrupted write of %s", entry, target)
            shutil.rmtree(entry, ignore_errors=True)


def refuse_foreign_entries(folder: Path, known: set[str], fix: str) -> None:
    """Before ``folder`` (a tree aea wrote) is deleted to be replaced: refuse, in one line naming them, entries at
    its top level that aea did not write, i.e. not in ``known``, not aea's own files (``aea_*``: markers, split
    caches) and not their temporary files. Nothing is deleted then."""
    from aea.errors import AEAError

    if not folder.is_dir():
        return
    foreign = sorted(e.name + ("/" if e.is_dir() else "") for e in folder.iterdir()
                     if e.name not in known and not e.name.startswith(("aea_", ".aea_")))
    if foreign:
        shown = ", ".join(foreign[:6]) + (f" and {len(foreign) - 6} more" if len(foreign) > 6 else "")
        raise AEAError(f"{folder} holds {shown}, which aea did not write; nothing was deleted: move those away, "
                       f"{fix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_yaml(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as YAML (keys in insertion order) atomically."""
    write_text(path, yaml.safe_dump(obj, sort_keys=False))


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that gives one key twice (PyYAML would silently keep the last)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping, naming both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: SafeLoader's own error names it
                break
            if first != key_node.start_mark.line + 1:
                raise DuplicateKeyError(f"key {key!r} is given twice, at lines {first} and "
                                        f"{key_node.start_mark.line + 1}")
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | os.PathLike) -> Any:
    """``path``'s YAML (safe types only); a key given twice in one mapping raises ``DuplicateKeyError``.

    The one YAML reader of the project: profiles, run configs, the workflow config and its schema."""
    return yaml.load(Path(path).read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def load_tensors(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load`` of ``path`` with ``weights_only=True``: tensors and plain values only, so a file made to run
    code when unpickled is refused, never run. Raises ``UnsafeFileError`` for such a file; any other exception
    means the file is damaged (truncated, overwritten, not a torch file)."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # torch's weights-only unpickler: a foreign object, or bytes that are no pickle
        if "Weights only load failed" in str(e) and "Unsupported operand" not in str(e):
            raise UnsafeFileError(str(path)) from None
        raise


class UnsafeFileError(Exception):
    """A torch file holding Python objects besides tensors and plain values (see ``load_tensors``)."""
