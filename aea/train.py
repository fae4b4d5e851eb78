"""The one training loop behind every method (``aea train``).

A run directory holds ``config.yaml`` (fully resolved), ``train_log.csv`` (one
row per epoch), ``checkpoint.pt`` (rewritten atomically after every epoch) and,
when finished, ``model.pt``.  A killed run started again with the same config
resumes from its checkpoint and ends bit-identical (on CPU) to a run that was
never interrupted, because every random draw is a pure function of
(seed, epoch, iteration): the sampler, the augmentation, the erasing and the
dropout are all re-seeded from those numbers.

It also holds ``data.json`` (the data trained on; a resume on changed data is
refused) and ``.train.lock`` (``aea train`` holds it: a second one on the same
directory is refused).  A damaged ``checkpoint.pt`` is set aside as
``checkpoint.pt.corrupt`` and the run restarts from epoch 1; temp files of
writes a kill cut short are removed at the next start.
"""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from aea.config import RunConfig, config_from_dict, read_run_config
from aea.data.datasets import Split
from aea.data.loaders import build_test_loader, build_train_loader, preload_pixels
from aea.erasing import EraseInput, build_erasing
from aea.errors import AEAError
from aea.io import UnsafeFileError, atomic_path, load_tensors, read_json, write_json, write_text, write_yaml
from aea.losses import batch_hard_triplet
from aea.methods import COMPLEMENTARY_KEYS, Method, get_method
from aea.models.aea import TwoNetworks
from aea.models.branch import ReIDNetwork
from aea.optim import SGD, Adam, Optimizer
from aea.seeding import derive_seed, seed_everything

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
LOG_FILE = "train_log.csv"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
STATIC_MASKS_FILE = "static_masks.npz"
DATA_FILE = "data.json"  # the data the run trains on: dataset, root and listing signature
LOCK_FILE = ".train.lock"  # held (flock) by the one `aea train` writing the directory
LOCK_POLL_SECONDS = 2.0  # how often a waiting `aea train --wait-lock` tries the lock again
METRICS_FILE = "metrics.json"  # written by `aea train --evaluate` / `aea evaluate` (aea.evaluate)
# every file aea writes into a run directory (and `aea show`'s default pictures); *.log are the workflow's job logs
RUN_FILES = (CONFIG_FILE, LOG_FILE, CHECKPOINT_FILE, CHECKPOINT_FILE + ".corrupt", MODEL_FILE, STATIC_MASKS_FILE,
             DATA_FILE, LOCK_FILE, METRICS_FILE, "attention.png", "erasing.png", "ranks.png")
CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "log", "train_seconds")
# settings that change no trained number (where data and logs go, how they are read and checked)
NUMBER_NEUTRAL_KEYS = ("check_counts", "num_workers", "cache_images", "eval_batch_size", "checkpoint_every")
AUGMENT_P = 0.5  # peer_form=one_network: share of a batch's images erased (REDA's published p)
LOG_COLUMNS = (
    "epoch", "lr", "joint", "iterations", "loss", "ce_basic", "ce_complementary", "triplet",
    "accuracy_basic", "accuracy_complementary", "erased_fraction", "loss_basic", "triplet_basic",
    "seconds", "erase_seconds",
)


def device_clock(device: torch.device) -> float:
    """``time.perf_counter()`` once ``device`` has finished its queued work: CUDA kernels run asynchronously,
    so a clock read right after a launch would time the launch, not the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def pick_device(name: str) -> torch.device:
    """``auto`` = CUDA when available, else CPU; an explicit CUDA request without CUDA is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AEAError(f"device={name} but no CUDA device is visible; use device=cpu or device=auto")
    return device


def given_gpu(gpus: int = 0) -> str | None:
    """What says this process was given a GPU, if anything: the workflow's ``--gpus`` (its gpus_per_run), or
    CUDA_VISIBLE_DEVICES naming devices (SLURM sets it to a job's GPUs)."""
    if gpus > 0:
        return f"--gpus {gpus}"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible and visible not in ("-1", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={visible}"
    return None


def training_device(cfg: RunConfig, gpus: int = 0) -> torch.device:
    """The device a run trains on. A process given a GPU (``given_gpu``) that CUDA cannot use is refused unless
    the run says device=cpu: device=auto would quietly train on the CPU, for days on a paper run."""
    given = given_gpu(gpus)
    if given and cfg.device != "cpu" and not torch.cuda.is_available():
        raise AEAError(f"this job was given a GPU ({given}) but CUDA is not usable here (torch {torch.__version__}, "
                       f"built for CUDA {torch.version.cuda or 'none'}): fix the node's driver or torch, or train on "
                       "the CPU on purpose with device=cpu")
    return pick_device(cfg.device)


def build_networks(cfg: RunConfig, num_classes: int, *, pretrained: str | None) -> TwoNetworks | ReIDNetwork:
    """The method's network(s), freshly initialised (ImageNet weights from ``pretrained`` when given)."""
    def one() -> ReIDNetwork:
        return ReIDNetwork(
            cfg.arch, num_classes, pretrained=pretrained, embed_dim=cfg.embed_dim,
            num_parts=cfg.num_parts, dropout=cfg.dropout, base_width=cfg.base_width,
        )

    if get_method(cfg.method, cfg.peer_form).two_networks:
        return TwoNetworks(one(), one())
    return one()


def place(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` on ``device``; on the CPU in channels-last layout, where oneDNN's convolutions run 15-20% faster
    at small sizes (measured at 64x32, width 16) and compute the same function."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cpu" else model


def basic_network(model: TwoNetworks | ReIDNetwork) -> ReIDNetwork:
    return model.basic if isinstance(model, TwoNetworks) else model


def load_run(run_dir: Path, device: torch.device) -> tuple[RunConfig, TwoNetworks | ReIDNetwork, dict]:
    """The config, trained model (eval mode) and record (``overrides``, ``train_seconds``) of a finished run."""
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


def not_a_run_file(path: Path, fix: str) -> str:
    """The one-line refusal of a torch file that a weights-only load refuses (``aea.io.load_tensors``)."""
    return (f"{path} is not a run file of this project: it holds Python objects besides tensors and plain values, "
            f"which aea never loads (unpickling them could run code); if the run is yours, {fix}")


def learning_rate(cfg: RunConfig, epoch: int) -> float:
    """Step schedule: ``lr`` until ``lr_decay_epoch`` (0-based), then ``lr * lr_gamma``."""
    return cfg.lr * (cfg.lr_gamma if epoch >= cfg.lr_decay_epoch else 1.0)


def make_optimizer(cfg: RunConfig, model: torch.nn.Module) -> Optimizer:
    """torch.optim's SGD / Adam rules (``aea.optim``: without the seconds torch.optim spends importing dynamo)."""
    if cfg.optimizer == "sgd":
        return SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


@dataclass
class EpochStats:
    """Running sums of one epoch, turned into a train_log.csv row."""

    sums: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    erase_seconds: float = 0.0

    def add(self, values: dict[str, float]) -> None:
        self.iterations += 1
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value

    def row(self, epoch: int, lr: float, joint: bool, seconds: float) -> dict[str, float | int | str]:
        n = max(self.iterations, 1)
        means = {k: self.sums.get(k, float("nan")) / n for k in LOG_COLUMNS}
        return {
            **means, "epoch": epoch, "lr": lr, "joint": int(joint), "iterations": self.iterations,
            "seconds": round(seconds, 3), "erase_seconds": round(self.erase_seconds, 3),
        }


def static_erasing(cfg: RunConfig, method: Method, split: Split, baseline1_dir: Path | None,
                   out_dir: Path, device: torch.device):
    """Erasing computed once before training (Baseline 4, AOS) with a finished Baseline-1 network."""
    from aea.erasing import StaticMaskErasing, adversarial_occlusion_masks, static_salient_masks

    cached = out_dir / STATIC_MASKS_FILE
    if cached.is_file():
        return StaticMaskErasing.load(cached, fill=cfg.erase_fill)
    if baseline1_dir is None:
        raise AEAError(f"method {method.name} needs a finished Baseline-1 run; pass --baseline1 DIR")
    b1_cfg, b1, _ = load_run(baseline1_dir, device)
    check_trains_alike(cfg, b1_cfg, baseline1_dir, "--baseline1", "baseline1")
    net = basic_network(b1)
    batches = as_device(build_test_loader(split.train, height=cfg.height, width=cfg.width,
                                          batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers), device)
    log.info("computing %s masks once with Baseline-1 network %s", method.erasing, baseline1_dir)
    with torch.no_grad():
        if method.erasing == "static-salient":
            masks = static_salient_masks(
                lambda x: net.tap(x, cfg.erase_layer), batches,
                cfg.erase_ratio, (cfg.height, cfg.width),
            )
        else:
            masks = adversarial_occlusion_masks(
                lambda x, pids: net(x, taps=()).logits.softmax(dim=1).gather(1, pids[:, None])[:, 0], batches,
            )
    strategy = StaticMaskErasing(masks, fill=cfg.erase_fill)
    strategy.save(cached)
    return strategy


def as_device(batches, device: torch.device):
    """Move every tensor of each batch dict to ``device``."""
    for batch in batches:
        yield {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def make_strategy(cfg: RunConfig, method: Method, split: Split, baseline1_dir: Path | None,
                  out_dir: Path, device: torch.device):
    if method.erasing is None:
        return None
    if method.erasing in ("static-salient", "occlusion"):
        return static_erasing(cfg, method, split, baseline1_dir, out_dir, device)
    kwargs = {
        "salient": dict(ratio=cfg.erase_ratio, fill=cfg.erase_fill, backend=cfg.erase_backend, layer=cfg.erase_layer),
        "gray": dict(ratio=cfg.erase_ratio, fill=cfg.erase_fill),
        "random": dict(),
        "random-budget": dict(ratio=cfg.erase_ratio, fill=cfg.erase_fill),
        "identity": dict(),
    }[method.erasing]
    return build_erasing(method.erasing, **kwargs)


def _triplets(cfg: RunConfig, groups: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """The batch-hard triplets of the step (L_T is their sum): one per (features, pids) group, or one over all
    of them (``triplet_mode``)."""
    if cfg.triplet_mode == "joint":
        groups = [(torch.cat([f for f, _ in groups]), torch.cat([p for _, p in groups]))]
    return [batch_hard_triplet(f.float(), p, cfg.margin) for f, p in groups]


@contextmanager
def own_stream(seed: int, device: torch.device) -> Iterator[None]:
    """The global RNG forked and reseeded for the block, then restored: the complementary network's dropout
    gets a stream of its own, so the basic network draws exactly what Baseline 1's network draws at the same
    seed (paired runs)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
        torch.manual_seed(seed)
        yield


def training_step(cfg: RunConfig, method: Method, model, strategy, batch: dict, *, joint: bool,
                  generator: torch.Generator, complementary_seed: int = 0, train_basic: bool = True
                  ) -> tuple[torch.Tensor, dict[str, float], float]:
    """Loss of one batch (see ``aea.methods``); returns (loss, logged values, seconds spent erasing).

    ``generator`` drives the erasing's randomness; ``complementary_seed`` seeds the complementary
    network's own dropout stream; ``train_basic=False`` leaves the basic network's terms out (its network
    comes from Baseline 1, ``Method.basic_from_baseline1``).
    """
    images, pids = batch["images"], batch["pids"]
    erase_seconds = 0.0
    if method.augments:
        images, erase_seconds = _augment(method, strategy, batch, generator)
    erase_now = joint and method.two_networks
    taps = (cfg.erase_layer,) if erase_now and method.erasing_needs_basic_features else ()
    loss = torch.zeros((), device=images.device)
    values: dict[str, float] = {}
    groups = []
    if train_basic:
        basic = basic_network(model)(images, taps=taps)
        ce_basic = F.cross_entropy(basic.logits.float(), pids)
        loss = ce_basic
        values.update(ce_basic=ce_basic.item(), accuracy_basic=(basic.logits.argmax(1) == pids).float().mean().item())
        groups = [(basic.feature, pids)] if method.triplet_on in ("basic", "both") else []
    if erase_now:
        start = device_clock(images.device)
        tapped = basic.maps[cfg.erase_layer].detach() if taps else None
        erased, mask = strategy.erase(EraseInput(images, features=tapped, indices=batch["indices"],
                                                 flipped=batch["flipped"], generator=generator))
        erase_seconds = device_clock(images.device) - start
        with own_stream(complementary_seed, images.device):
            comp = model.complementary(erased)
        ce_comp = F.cross_entropy(comp.logits.float(), pids)
        loss = loss + cfg.alpha1 * ce_comp
        values.update(ce_complementary=ce_comp.item(), erased_fraction=mask.float().mean().item(),
                      accuracy_complementary=(comp.logits.argmax(1) == pids).float().mean().item())
        if method.triplet_on in ("complementary", "both"):
            groups.append((comp.feature, pids))
    if groups:
        triplets = _triplets(cfg, groups)
        triplet = triplets[0] if len(triplets) == 1 else sum(triplets[1:], triplets[0])
        loss = loss + cfg.alpha2 * triplet
        values["triplet"] = triplet.item()
        if train_basic and method.triplet_on != "complementary" and cfg.triplet_mode == "per_network":
            values.update(triplet_basic=triplets[0].item(), loss_basic=(ce_basic + cfg.alpha2 * triplets[0]).item())
    values["loss"] = loss.item()
    return loss, values, erase_seconds


def _augment(method: Method, strategy, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """One network's batch with erasing as data augmentation: REDA's random erasing draws its own p = 0.5;
    a precomputed mask (AOS) is applied to each image with probability 0.5."""
    images = batch["images"]
    start = device_clock(images.device)
    erased, _ = strategy.erase(EraseInput(images, indices=batch["indices"], flipped=batch["flipped"],
                                          generator=generator))
    if method.erasing != "random":
        chosen = torch.rand(len(images), generator=generator, device=generator.device) < AUGMENT_P
        erased = torch.where(chosen.to(images.device)[:, None, None, None], erased, images)
    return erased, device_clock(images.device) - start


def check_runtime(cfg: RunConfig) -> None:
    """Refuse, before any work, what this machine cannot run: the architecture, the device, the Triton erase
    backend (``aea.config.validate`` checks the values themselves without importing torch)."""
    from aea.models.resnet import ARCHS
    from kernels import triton_usable

    if cfg.arch not in ARCHS:
        raise AEAError(f"arch={cfg.arch!r}; choose one of {', '.join(ARCHS)}")
    device = pick_device(cfg.device)
    if cfg.erase_backend == "triton" and not triton_usable(device):
        raise AEAError(f"erase_backend=triton needs a CUDA device (device is {device}); "
                       "use erase_backend=auto or erase_backend=reference")


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
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        try:
            torch.save(obj, handle)
        except RuntimeError as e:  # the zip writer's cleanup after a failed write can hide the OSError behind its own
            if isinstance(e.__context__, OSError):
                raise e.__context__ from None
            raise


def available_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` now (the CPU: Linux's MemAvailable); None where it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def check_cache_fits(images: int, height: int, width: int, device: torch.device) -> None:
    """Refuse ``cache_images`` before it allocates, when its ``images`` x 3 x height x width bytes (uint8,
    ``aea.data.loaders.preload_pixels``, decoded on the CPU, then moved to ``device``) exceed the free memory."""
    need = images * 3 * height * width
    for where in dict.fromkeys([torch.device("cpu"), device]):
        free = available_memory(where)
        if free is not None and need > free:
            raise AEAError(f"cache_images=true would hold {images} training images at {height}x{width} in memory: "
                           f"{need / 2**30:.1f} GiB, more than the {free / 2**30:.1f} GiB free on {where.type}; set "
                           "cache_images=false (images are read from disk each epoch) or lower height / width")


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


def take_baseline1_basic(cfg: RunConfig, model: TwoNetworks, baseline1_dir: Path | None,
                         device: torch.device) -> list[dict]:
    """Copy the finished Baseline-1 run's network into ``model.basic``; return that run's train_log rows."""
    if baseline1_dir is None:
        raise AEAError(f"method {cfg.method} needs a finished Baseline-1 run; pass --baseline1 DIR (the run of the "
                       "same seed gives the basic network, share_basic=true), or set share_basic=false")
    b1_cfg, b1, _ = load_run(baseline1_dir, device)
    check_trains_alike(cfg, b1_cfg, baseline1_dir, "--baseline1", "baseline1")
    model.basic.load_state_dict(b1.state_dict())
    model.basic.requires_grad_(False)
    return read_log(baseline1_dir)


def with_basic_terms(row: dict, basic_row: dict) -> dict:
    """A train_log row of the complementary network completed with Baseline 1's basic terms of that epoch, as
    training both networks together logs them (the loss and the per_network triplet are sums of both)."""
    keys = ("ce_basic", "accuracy_basic", "loss_basic", "triplet_basic")
    basic = {k: float(basic_row[k]) for k in keys}
    if row["iterations"] == 0:  # a warm-up epoch: the basic network's alone
        return {**row, **basic, "loss": basic["loss_basic"], "triplet": basic["triplet_basic"],
                "iterations": int(basic_row["iterations"])}
    return {**row, **basic, "loss": basic["loss_basic"] + row["loss"],
            "triplet": basic["triplet_basic"] + row["triplet"]}


def read_off_basic(cfg: RunConfig, source_dir: Path, out_dir: Path, device: torch.device,
                   overrides: dict | None) -> Path:
    """Write the run ``cfg`` (Baseline 1) as the basic network of the finished run in ``source_dir`` that
    trained it (``Method.read_off``): its weights, and its log's basic terms as Baseline 1 logs them."""
    source_cfg, source, record = load_run(source_dir, device)
    check_trains_alike(cfg, source_cfg, source_dir, "--basic-of", get_method(cfg.method).read_off(
        cfg.triplet_mode, cfg.share_basic))
    rows = []
    for row in read_log(source_dir):
        epoch = int(row["epoch"])
        basic = {k: float(row[k]) for k in ("ce_basic", "accuracy_basic", "loss_basic", "triplet_basic")}
        rows.append({**EpochStats().row(epoch, float(row["lr"]), epoch >= cfg.warmup_epochs, 0.0), **basic,
                     "loss": basic["loss_basic"], "triplet": basic["triplet_basic"],
                     "iterations": int(row["iterations"])})
    write_log(out_dir / LOG_FILE, rows)
    model_path = out_dir / MODEL_FILE
    save_atomic({"config": cfg.to_dict(), "overrides": dict(overrides or {}),
                 "num_classes": source.basic.classifier.out_features, "state_dict": source.basic.state_dict(),
                 "train_seconds": 0.0, "basic_from": str(source_dir)}, model_path)
    log.info("%s is the basic network of %s (trained there); nothing to train", out_dir, source_dir)
    return model_path


def train(cfg: RunConfig, split: Split, out_dir: Path, *, overrides: dict | None = None,
          baseline1_dir: Path | None = None, basic_of: Path | None = None,
          stop_after_epoch: int | None = None) -> Path:
    """Train ``cfg.method`` on ``split`` into ``out_dir``; resume from its checkpoint if one exists.

    ``overrides`` (what the user changed from the profile) is stored with the model for the tables.

    ``stop_after_epoch`` ends the run early after that epoch (0-based), as a kill would, for tests.
    Returns the path of the final ``model.pt``.
    """
    check_runtime(cfg)
    if cfg.cache_images:  # before anything is written: the corrected command must find no other config here
        check_cache_fits(len(split.train), cfg.height, cfg.width, pick_device(cfg.device))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_run_dir(cfg, out_dir)
    check_run_data(split, out_dir)
    model_path = out_dir / MODEL_FILE
    if model_path.is_file():
        log.info("%s already finished; nothing to do", out_dir)
        return model_path
    method = get_method(cfg.method, cfg.peer_form)
    device = pick_device(cfg.device)
    if basic_of is not None:
        if method.read_off(cfg.triplet_mode, cfg.share_basic) is None:
            raise AEAError(f"--basic-of: a {cfg.method} run with triplet_mode={cfg.triplet_mode}, share_basic="
                           f"{cfg.share_basic} is trained, not read off another run; drop --basic-of")
        return read_off_basic(cfg, basic_of, out_dir, device, overrides)
    seed_everything(cfg.seed)
    model = place(build_networks(cfg, split.num_train_pids, pretrained=cfg.pretrained), device)
    shared = method.basic_from_baseline1(cfg.triplet_mode, cfg.share_basic)
    basic_log: list[dict] = []
    if shared:  # the basic network is Baseline 1's; only the complementary one trains
        basic_log = take_baseline1_basic(cfg, model, baseline1_dir, device)
    optimizer = make_optimizer(cfg, model.complementary if shared else model)
    rows: list[dict] = []
    start_epoch, seconds_before = 0, 0.0
    checkpoint_path = out_dir / CHECKPOINT_FILE
    state = read_checkpoint(checkpoint_path, device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        rows, start_epoch, seconds_before = state["log"], state["epoch"] + 1, state["train_seconds"]
        log.info("resuming %s from epoch %d", out_dir, start_epoch)
    strategy = make_strategy(cfg, method, split, baseline1_dir, out_dir, device)
    use_amp = cfg.amp and device.type == "cuda"
    started = time.perf_counter()
    # cache_images: uint8 pixels on the training device, each batch augmented there (aea.data.loaders)
    pixels = preload_pixels(split.train, cfg.height, cfg.width).to(device) if cfg.cache_images else None
    for epoch in range(start_epoch, cfg.epochs):
        joint = epoch >= cfg.warmup_epochs
        lr = learning_rate(cfg, epoch)
        if shared and not joint:  # a warm-up epoch trains the basic network alone: Baseline 1 did it
            rows.append(with_basic_terms(EpochStats().row(epoch, lr, joint, 0.0), basic_log[epoch]))
            continue
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(derive_seed(cfg.seed, epoch, 0))  # dropout draws, a pure function of (seed, epoch)
        model.train()
        stats = EpochStats()
        epoch_start = time.perf_counter()
        loader = build_train_loader(
            split.train, p=cfg.batch_p, k=cfg.batch_k, height=cfg.height, width=cfg.width, seed=cfg.seed,
            epoch=epoch, num_workers=cfg.num_workers, pad=cfg.pad, flip=cfg.flip, pixels=pixels,
        )
        total = len(loader) if cfg.max_iters_per_epoch is None else min(len(loader), cfg.max_iters_per_epoch)
        progress = tqdm(as_device(loader, device), total=total, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                        leave=False, disable=None)
        for iteration, batch in enumerate(progress):
            if iteration >= total:
                break
            generator = torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, epoch, iteration, 1))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, values, erase_seconds = training_step(
                    cfg, method, model, strategy, batch, joint=joint, generator=generator,
                    complementary_seed=derive_seed(cfg.seed, epoch, iteration, 2), train_basic=not shared)
            if not torch.isfinite(loss):
                raise AEAError(
                    f"loss became {loss.item()} at epoch {epoch + 1} iteration {iteration + 1}: training diverged; "
                    f"lower lr (now {lr}) and rerun (the last good checkpoint is {checkpoint_path})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            stats.add(values)
            stats.erase_seconds += erase_seconds
            progress.set_postfix(loss=f"{values['loss']:.3f}")
        row = stats.row(epoch, lr, joint, time.perf_counter() - epoch_start)
        rows.append(with_basic_terms(row, basic_log[epoch]) if shared else row)
        write_log(out_dir / LOG_FILE, rows)
        log.info("epoch %d/%d loss %.4f (%.1fs)", epoch + 1, cfg.epochs, rows[-1]["loss"], rows[-1]["seconds"])
        if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
            save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                         "log": rows, "train_seconds": seconds_before + time.perf_counter() - started}, checkpoint_path)
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch + 1 < cfg.epochs:
            return checkpoint_path
    train_seconds = seconds_before + time.perf_counter() - started
    save_atomic({"config": cfg.to_dict(), "overrides": dict(overrides or {}), "num_classes": split.num_train_pids,
                 "state_dict": model.state_dict(), "train_seconds": train_seconds,
                 "basic_from": str(baseline1_dir) if shared else None}, model_path)
    return model_path
