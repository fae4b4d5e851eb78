"""A run's folder: its layout and file names, loading a finished run, the lock one ``aea train`` holds on it,
checkpoint I/O, the records of its config (``config.yaml``) and data (``data.json``), and which other runs a run
needs (``run_inputs``). Training (``aea.train``), evaluation, pictures, the CLI and both workflows read runs
through this module, so none of them imports the training loop to find a file.

A run directory ``results/runs/<profile>/<dataset>/<run name>/seed<k>/`` holds ``config.yaml`` (fully resolved),
``train_log.csv`` (one row per epoch), ``checkpoint.pt`` (rewritten atomically after every epoch) and, when
finished, ``model.pt``; ``metrics.json`` once evaluated; ``data.json`` (the data trained on: a resume on changed
data is refused) and ``.train.lock`` (held by the one ``aea train`` writing it). A damaged ``checkpoint.pt`` is
set aside as ``checkpoint.pt.corrupt``; temp files of writes a kill cut short are removed at the next start.

Torch is imported only by the functions that read or write tensors: the workflow imports this module to plan.
"""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aea.config import RunConfig, config_from_dict, read_run_config
from aea.errors import AEAError
from aea.io import UnsafeFileError, atomic_path, load_tensors, read_json, write_json, write_text, write_yaml
from aea.methods import COMPLEMENTARY_KEYS, get_method

if TYPE_CHECKING:
    import torch

    from aea.data.datasets import Split
    from aea.erasing import MaskBank
    from aea.models.aea import TwoNetworks
    from aea.models.branch import ReIDNetwork

log = logging.getLogger(__name__)

RUNS_ROOT = "results/runs"  # every profile's runs, under <profile>/
CONFIG_FILE = "config.yaml"
LOG_FILE = "train_log.csv"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
STATIC_MASKS_FILE = "static_masks.npz"
DATA_FILE = "data.json"  # the data the run trains on: dataset, root and listing signature
LOCK_FILE = ".train.lock"  # held (flock) by the one `aea train` writing the directory
LOCK_POLL_SECONDS = 2.0  # how often a waiting `aea train --wait-lock` tries the lock again
METRICS_FILE = "metrics.json"  # written by `aea train --evaluate` / `aea evaluate` (aea.evaluate)
HISTORY_FILE = "train.log"  # every attempt at the run (`aea train`'s log; the workflow's job log is another file)
# every file aea writes into a run directory (and `aea show`'s default pictures); *.log are the logs
RUN_FILES = (CONFIG_FILE, LOG_FILE, CHECKPOINT_FILE, CHECKPOINT_FILE + ".corrupt", MODEL_FILE, STATIC_MASKS_FILE,
             DATA_FILE, LOCK_FILE, METRICS_FILE, "attention.png", "erasing.png", "ranks.png")
CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "log", "train_seconds")
# settings that change no trained number (where data and logs go, how they are read and checked)
NUMBER_NEUTRAL_KEYS = ("check_counts", "num_workers", "cache_images", "eval_batch_size", "checkpoint_every")
LOG_COLUMNS = (
    "epoch", "lr", "joint", "iterations", "loss", "ce_basic", "ce_complementary", "triplet",
    "accuracy_basic", "accuracy_complementary", "erased_fraction", "loss_basic", "triplet_basic",
    "seconds", "erase_seconds",
)


def profile_runs(profile: str, root: str = RUNS_ROOT) -> str:
    """The folder of one profile's runs."""
    return f"{root}/{profile}"


def run_path(runs: str | os.PathLike, dataset: str, name: str, seed: int | str) -> str:
    """The folder of run ``name`` (``aea.config.run_name``) of ``dataset`` at ``seed`` under a profile's ``runs``
    folder; ``seed`` may be a pattern such as ``{seed}`` (the workflow's, `aea train --seed 0,1`'s)."""
    return f"{runs}/{dataset}/{name}/seed{seed}"


def baseline1_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides of the Baseline-1 run that pairs with a run of ``overrides``: the ones Baseline 1 reads."""
    return {k: v for k, v in overrides.items() if k not in COMPLEMENTARY_KEYS}


def run_inputs(cfg: RunConfig, overrides: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The finished runs of the same dataset and seed that the run ``cfg`` (made with ``overrides``) takes as
    input, by its `aea train` option, each as (method, overrides):

    ``baseline1``  static masks (Baseline 4, AOS), or the basic network (``share_basic``: Baselines 3/4, REDA, AOS,
                   the controls);
    ``basic_of``   the run whose basic network this run is and that trains it (Baseline 1 from AEA's run).
    """
    method = get_method(cfg.method, cfg.peer_form)
    inputs = {}
    if method.uses_baseline1(cfg.triplet_mode, cfg.share_basic):
        inputs["baseline1"] = ("baseline1", baseline1_overrides(overrides))
    source = method.read_off(cfg.triplet_mode, cfg.share_basic)
    if source:
        inputs["basic_of"] = (source, dict(overrides))
    return inputs


def run_config(run_dir: Path) -> RunConfig:
    """The resolved config of the run in ``run_dir``."""
    if not (run_dir / CONFIG_FILE).is_file():
        raise AEAError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); pass the --out of `aea train`")
    return read_run_config(run_dir / CONFIG_FILE)


def load_run(run_dir: Path, device: torch.device) -> tuple[RunConfig, TwoNetworks | ReIDNetwork, dict]:
    """The config, trained model (eval mode) and record (``overrides``, ``train_seconds``) of a finished run."""
    from aea.device import place
    from aea.models.aea import build_networks

    model_path = Path(run_dir) / MODEL_FILE
    if not model_path.is_file():
        raise AEAError(f"{model_path} not found: the run is not finished; "
                       f"train it first with `aea train --out {run_dir}`")
    retrain = f"delete it and rerun the run's `aea train` command (it rewrites {MODEL_FILE} from the last checkpoint)"
    damaged = f"{model_path} is damaged: {retrain}"
    try:
        saved = load_tensors(model_path, map_location=device)
    except UnsafeFileError:
        raise AEAError(not_a_run_file(model_path, retrain)) from None
    except Exception as e:  # truncated, overwritten or not a torch file: torch raises many types
        raise AEAError(f"cannot read {model_path} ({type(e).__name__}); {damaged}") from None
    try:
        cfg = config_from_dict(saved["config"], model_path)
        model = build_networks(cfg, saved["num_classes"], pretrained=None)
        model.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise AEAError(f"{model_path} does not hold a whole run ({type(e).__name__}: {e}); {damaged}") from None
    record = {"overrides": saved.get("overrides", {}), "train_seconds": saved.get("train_seconds", float("nan"))}
    return cfg, place(model, device).eval(), record


def read_static_masks(run_dir: Path | None) -> MaskBank | None:
    """The masks a Baseline-4 / AOS run computed once with its Baseline 1 and saved in its folder
    (``static_masks.npz``); None when it has none (yet), or no folder is given."""
    from aea.erasing import MaskBank

    path = Path(run_dir) / STATIC_MASKS_FILE if run_dir is not None else None
    return MaskBank.load(path) if path is not None and path.is_file() else None


def not_a_run_file(path: Path, fix: str) -> str:
    """The one-line refusal of a torch file that a weights-only load refuses (``aea.io.load_tensors``)."""
    return (f"{path} is not a run file of this project: it holds Python objects besides tensors and plain values, "
            f"which aea never loads (unpickling them could run code); if the run is yours, {fix}")


@contextmanager
def claim_run_dir(out_dir: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold ``out_dir`` for one ``aea train``: a second process on the same directory is refused (``flock`` on
    ``.train.lock``, released even when the holder is killed), and the temporary files of writes a killed run
    cut short (``.checkpoint.pt.*.tmp``, see ``aea.io.atomic_path``) are removed. The lock file is removed when
    the holder ends (no ``.train.lock`` is left in a folder aea refused), so a holder checks that the file it
    locked is still the one at the path.

    ``wait``: seconds to wait for a holder to end before refusing (another attempt of the same run, such as the
    SLURM job of a lost Snakemake head: this attempt then finds the run finished, or resumes it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = out_dir / LOCK_FILE
    deadline, told = time.monotonic() + wait, False
    while True:
        handle = open(lock, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            left = deadline - time.monotonic()
            if left > 0:
                if not told:
                    log.info("another `aea train` is writing %s (it holds %s): waiting up to %.0f s for it to end",
                             out_dir, lock, wait)
                    told = True
                time.sleep(min(LOCK_POLL_SECONDS, left))
                continue
            waited = f" (waited {wait:.0f} s)" if wait else ""
            raise AEAError(f"another `aea train` is writing {out_dir} (it holds {lock}){waited}; "
                           "wait for it to finish, or give this run another --out") from None
        held = os.fstat(handle.fileno())
        if lock.exists() and os.path.samestat(held, lock.stat()):
            break
        handle.close()  # the holder before us removed the file as it ended: lock the one at the path now
    try:
        for leftover in out_dir.iterdir():
            if is_temp_of_run_file(leftover.name):
                log.info("removing %s, left by an interrupted write", leftover)
                leftover.unlink()
        yield
    finally:
        lock.unlink(missing_ok=True)  # still held here: no other run can have locked this file
        handle.close()


def is_temp_of_run_file(name: str) -> bool:
    """Whether ``name`` is the temporary file of an interrupted write of a run file (``aea.io.atomic_path``)."""
    return any(name.startswith(f".{run_file}.") and name.endswith(".tmp") for run_file in RUN_FILES)


def is_run_file(name: str) -> bool:
    """Whether a run directory's entry ``name`` is one that aea (or the workflow's job log) writes there: the only
    files ``--replace-changed`` deletes."""
    return name in RUN_FILES or name.endswith(".log") or is_temp_of_run_file(name)


def read_checkpoint(path: Path, device: torch.device) -> dict | None:
    """The checkpoint at ``path``; None when there is none or it is damaged.

    Checkpoints are written atomically, so a damaged one was damaged from outside (a copy cut short, a
    disk error) and no earlier state survives it: it is set aside as ``checkpoint.pt.corrupt`` (kept for
    inspection) and the run restarts from epoch 1, which ends in the same model as an unbroken run.
    """
    if not path.is_file():
        return None
    try:
        state = load_tensors(path, map_location=device)  # weights only: a foreign object is refused, never run
        if not isinstance(state, dict) or not set(CHECKPOINT_KEYS) <= set(state):
            raise ValueError(f"not a checkpoint with {', '.join(CHECKPOINT_KEYS)}")
    except Exception as e:  # truncated, overwritten or not a torch file: torch raises many types
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        what = ("not a run file of this project: it holds Python objects besides tensors, not loaded"
                if isinstance(e, UnsafeFileError) else type(e).__name__)
        log.warning("%s is damaged (%s); set aside as %s, training restarts from epoch 1", path, what, aside)
        return None
    return state


def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` to ``path`` atomically, through a Python file: a full disk then raises OSError (ENOSPC)
    naming ``path`` instead of torch's bare RuntimeError from its C++ writer."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        try:
            torch.save(obj, handle)
        except RuntimeError as e:  # the zip writer's cleanup after a failed write can hide the OSError behind its own
            if isinstance(e.__context__, OSError):
                raise e.__context__ from None
            raise


def check_run_data(split: Split, out_dir: Path) -> None:
    """Record the data the run trains on in ``data.json`` (dataset, root, listing signature); refuse to resume
    a run on data that changed since it started (regenerated, re-extracted, edited)."""
    record = {"dataset": split.name, "root": split.root, "signature": split.signature}
    path = out_dir / DATA_FILE
    if path.is_file():
        try:
            before = read_json(path).get("signature")
        except (OSError, ValueError, AttributeError):
            before = None
        if before != split.signature:
            raise AEAError(f"{out_dir} was trained on other data (signature {before} in {path}, now "
                           f"{split.signature} for {split.root}); delete {out_dir} (or pass --replace-changed) "
                           "to train it afresh on this data")
    else:
        write_json(path, record)


def check_run_dir(cfg: RunConfig, out_dir: Path) -> None:
    """Refuse to mix two configs in one run directory; write config.yaml on first use."""
    config_path = out_dir / CONFIG_FILE
    if config_path.is_file():
        existing = read_run_config(config_path)
        if existing != cfg:
            diff = {k: (v, cfg.to_dict()[k]) for k, v in existing.to_dict().items() if cfg.to_dict()[k] != v}
            raise AEAError(
                f"{out_dir} holds a run with another config (was -> now: {diff}); use a new --out or delete {out_dir}"
            )
    else:
        write_yaml(config_path, cfg.to_dict())


def write_log(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def check_trains_alike(cfg: RunConfig, other: RunConfig, other_dir: Path, flag: str, method: str) -> None:
    """Refuse ``other`` unless it is a ``method`` run that trains ``cfg``'s basic network as ``cfg`` would: every
    config value but the method, ``aea.methods.COMPLEMENTARY_KEYS`` and settings that change no number agrees."""
    ignored = {"method", "profile", *COMPLEMENTARY_KEYS, *NUMBER_NEUTRAL_KEYS}
    ours, theirs = cfg.to_dict(), other.to_dict()
    differ = sorted(k for k in ours if k not in ignored and ours[k] != theirs[k])
    if other.method != method or differ:
        raise AEAError(f"{flag} {other_dir} is a {other.method} run"
                       + (f" that differs in {', '.join(f'{k}={theirs[k]}' for k in differ)}" if differ else "")
                       + f"; pass the {method} run of {cfg.dataset}, seed {cfg.seed}"
                       + (", with " + ", ".join(f"{k}={ours[k]}" for k in differ) if differ else ""))


def read_log(run_dir: Path) -> list[dict]:
    with open(Path(run_dir) / LOG_FILE, newline="") as f:
        return list(csv.DictReader(f))


