"""The one training loop behind every method (``aea train``).

A killed run started again with the same config resumes from its checkpoint and ends bit-identical (on CPU) to a
run that was never interrupted, because every random draw is a pure function of (seed, epoch, iteration): the
sampler, the augmentation, the erasing and the dropout are all re-seeded from those numbers. What the run's folder
holds, and how it is locked, checkpointed and checked, is ``aea.runs``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from aea.config import RunConfig
from aea.data.datasets import Split
from aea.data.loaders import build_test_loader, build_train_loader, preload_pixels
from aea.device import available_memory, device_clock, pick_device, place
from aea.erasing import EraseInput, Erasing, MaskBank, build_erasing
from aea.errors import AEAError
from aea.losses import batch_hard_triplet
from aea.methods import Method, Strategy, get_method
from aea.models.aea import TwoNetworks, basic_network, build_networks
from aea.optim import SGD, Adam, Optimizer
from aea.runs import (
    CHECKPOINT_FILE,
    LOG_COLUMNS,
    LOG_FILE,
    MODEL_FILE,
    STATIC_MASKS_FILE,
    check_run_data,
    check_run_dir,
    check_trains_alike,
    load_run,
    read_checkpoint,
    read_log,
    read_static_masks,
    run_inputs,
    save_atomic,
    write_log,
)
from aea.seeding import derive_seed, seed_everything

log = logging.getLogger(__name__)

AUGMENT_P = 0.5  # peer_form=one_network: share of a batch's images erased (REDA's published p)


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


def static_masks(cfg: RunConfig, strategy: Strategy, split: Split, baseline1_dir: Path | None,
                 device: torch.device) -> MaskBank:
    """The masks of a ``baseline1_masks`` strategy (Baseline 4, AOS), computed once before training with the
    finished Baseline-1 run in ``baseline1_dir``."""
    from aea.erasing import adversarial_occlusion_masks, static_salient_masks

    if baseline1_dir is None:
        raise AEAError(f"method {cfg.method} needs a finished Baseline-1 run; pass --baseline1 DIR")
    b1_cfg, b1, _ = load_run(baseline1_dir, device)
    check_trains_alike(cfg, b1_cfg, baseline1_dir, "--baseline1", "baseline1")
    net = basic_network(b1)
    batches = as_device(build_test_loader(split.train, height=cfg.height, width=cfg.width,
                                          batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers), device)
    log.info("computing %s masks once with Baseline-1 network %s", strategy.name, baseline1_dir)
    with torch.no_grad():
        if strategy.masks == "salient":
            return static_salient_masks(lambda x: net.tap(x, cfg.erase_layer), batches, cfg.erase_ratio,
                                        (cfg.height, cfg.width))
        return adversarial_occlusion_masks(
            lambda x, pids: net(x, taps=()).logits.softmax(dim=1).gather(1, pids[:, None])[:, 0], batches)


def run_erasing(cfg: RunConfig, method: Method, split: Split | None, baseline1_dir: Path | None, out_dir: Path | None,
                device: torch.device) -> Erasing | None:
    """The run's erasing strategy built from its registry entry (``aea.methods.STRATEGIES``): precomputed masks
    are read from the run's ``static_masks.npz`` when there, else computed and saved there."""
    strategy = method.erasing
    if strategy is None:
        return None
    kwargs = strategy.kwargs(cfg)
    if strategy.needs == "baseline1_masks":
        kwargs["masks"] = read_static_masks(out_dir)
        if kwargs["masks"] is None:
            kwargs["masks"] = static_masks(cfg, strategy, split, baseline1_dir, device)
            if out_dir is not None:
                kwargs["masks"].save(Path(out_dir) / STATIC_MASKS_FILE)
    return build_erasing(strategy, **kwargs)


def as_device(batches, device: torch.device):
    """Move every tensor of each batch dict to ``device``."""
    for batch in batches:
        yield {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


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
    if method.erasing.name != "random":
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


def read_off_basic(cfg: RunConfig, source_method: str, source_dir: Path, out_dir: Path, device: torch.device,
                   overrides: dict | None) -> Path:
    """Write the run ``cfg`` (Baseline 1) as the basic network of the finished ``source_method`` run in
    ``source_dir`` that trained it (``aea.runs.run_inputs``' ``basic_of``): its weights, and its log's basic terms
    as Baseline 1 logs them."""
    source_cfg, source, record = load_run(source_dir, device)
    check_trains_alike(cfg, source_cfg, source_dir, "--basic-of", source_method)
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
        source = run_inputs(cfg, overrides or {}).get("basic_of")
        if source is None:
            raise AEAError(f"--basic-of: a {cfg.method} run with triplet_mode={cfg.triplet_mode}, share_basic="
                           f"{cfg.share_basic} is trained, not read off another run; drop --basic-of")
        return read_off_basic(cfg, source[0], basic_of, out_dir, device, overrides)
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
    strategy = run_erasing(cfg, method, split, baseline1_dir, out_dir, device)
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
