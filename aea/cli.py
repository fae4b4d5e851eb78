"""``aea`` console script: data, train, evaluate, table, compare, show, plan.

This is the edge where profiles and command-line options are read; everything
below it takes plain arguments.  A user error (``AEAError``) is printed as one
line and exits with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from aea.config import DATASETS, Profile, RunConfig, data_root, load_profile, parse_overrides, resolve
from aea.errors import AEAError
from aea.io import write_json
from aea.methods import METHODS
from aea.runs import (
    CONFIG_FILE,
    DATA_FILE,
    HISTORY_FILE,
    LOCK_FILE,
    METRICS_FILE,
    baseline1_overrides,
    is_run_file,
    run_config,
    run_inputs,
)

if TYPE_CHECKING:
    from aea.data.datasets import Split

log = logging.getLogger("aea")

EVALUATE_KEYS = ("check_counts",)  # what `aea evaluate` may override: how the test set is loaded, not the model
# OSErrors that are the user's to fix (a full disk, a read-only or foreign folder), printed as one line
_NOT_WRITABLE = "fix its permissions or choose a writable --out / --out-dir"
_RERUN = "then rerun the same command (a training resumes from its last checkpoint)"
WRITE_ERRNOS = {errno.ENOSPC: f"free disk space, {_RERUN}", errno.EDQUOT: f"free disk space (quota exceeded), {_RERUN}",
                errno.EROFS: "the file system is read-only: choose a writable --out / --out-dir",
                errno.EACCES: _NOT_WRITABLE, errno.EPERM: _NOT_WRITABLE}


MEMORY_FIX = ("lower what it holds at once: batch_p / batch_k (training) or eval_batch_size (evaluation), "
              "cache_images=false, num_workers=0 and fewer --threads (e.g. `aea train ... eval_batch_size=32 "
              "cache_images=false`), or give the job more memory")


def out_of_memory(error: BaseException) -> str | None:
    """What was asked, when ``error`` is the machine's memory running out (a MemoryError, torch's allocators, a
    shared library that cannot be mapped at import, ENOMEM); None for any other error."""
    text = str(error)
    asked = re.search(r"allocate (\d+) bytes", text)
    if asked:  # torch's DefaultCPUAllocator names the bytes it asked for
        return f"an allocation of {int(asked[1]) / 2**30:.1f} GiB failed"
    cuda = re.search(r"Tried to allocate ([\d.]+ [KMG]iB)", text)
    if isinstance(error, RuntimeError) and (cuda or "out of memory" in text or "can't allocate memory" in text):
        return f"an allocation{f' of {cuda[1]}' if cuda else ''} failed on the {'GPU' if cuda else 'device'}"
    if isinstance(error, RuntimeError) and "killed by signal: Killed" in text:  # the kernel's OOM killer, most often
        return f"{text.split(')')[0]}) was killed by SIGKILL, most often the kernel's out-of-memory killer"
    if isinstance(error, MemoryError):
        return "a MemoryError"
    if isinstance(error, ImportError) and "failed to map segment" in text:
        return f"a library could not be loaded: {text}"
    if isinstance(error, OSError) and error.errno == errno.ENOMEM:
        return f"{error.strerror}"
    return None


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise AEAError(f"--threads {threads}: give a number of CPU threads >= 1, or leave --threads out")
    import torch

    torch.set_num_threads(threads)


def profile_overrides(profile: Profile, dataset: str, items: list[str], pretrained: str | None) -> dict:
    """Typed, canonical run overrides from ``key=value`` items (and ``--pretrained``)."""
    overrides = parse_overrides(items)
    if pretrained is not None:
        overrides["pretrained"] = pretrained
    return profile.canonical(dataset, overrides)


def cmd_data(args: argparse.Namespace) -> None:
    from aea.config import check_seed
    from aea.data.datasets import load_dataset
    from aea.data.synthetic import make_synthetic

    check_seed(args.seed)
    if args.action == "make-mechanism":
        from aea.data.bodyparts import make_mechanism

        path = make_mechanism(Path(args.root), variant=args.variant, occlusion=args.occlusion, size=args.size,
                              seed=args.seed, version=args.generator_version, occluded_region=args.occluded_region)
        log.info("wrote mechanism data (version %d, %s, p=%g, occluded region %s) to %s", args.generator_version,
                 args.variant, args.occlusion, args.occluded_region, path)
    elif args.action == "stand-in-weights":
        from aea.models.backbone import write_stand_in_weights

        if not args.out:
            raise AEAError("stand-in-weights needs --out FILE, e.g. --out resnet50-stand-in.pth")
        path = write_stand_in_weights(args.out, args.arch, args.seed)
        log.info("wrote a stand-in for torchvision's %s weights file (random values, seed %d; not ImageNet) to %s",
                 args.arch, args.seed, path)
    elif args.action == "make-synthetic":
        for dataset in args.dataset:
            path = make_synthetic(dataset, Path(args.root), size=args.size, seed=args.seed, layout=args.layout,
                                  protocol_dir=args.protocol_dir)
            log.info("wrote synthetic %s to %s", dataset, path)
    else:
        counts = {}
        for dataset in args.dataset:
            split = load_dataset(dataset, Path(args.root), check_counts=args.check_counts)
            counts[dataset] = {"train_images": len(split.train), "train_ids": split.num_train_pids,
                               "query": len(split.query), "gallery": len(split.gallery), "cameras": split.num_cams}
            log.info("%s: train %d images / %d ids, query %d, gallery %d, cameras %d", dataset,
                     *counts[dataset].values())
        if args.json:
            write_json(args.json, counts)


SEED_FIELD = "{seed}"
SEED_PATHS = ("out", "write_baseline1", "baseline1", "basic_of")  # train's paths that name one seed's run


def train_seeds(args: argparse.Namespace) -> list[int]:
    """``--seed 0`` or ``--seed 0,1,2``; several seeds need ``{seed}`` in every run path given (one folder each)."""
    from aea.config import check_seed

    try:
        seeds = [int(s) for s in str(args.seed).split(",")]
    except ValueError:
        raise AEAError(f"--seed {args.seed!r}: give one seed or a comma-separated list, e.g. --seed 0,1,2") from None
    seeds = [check_seed(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise AEAError(f"--seed {args.seed}: a seed is given twice; give each seed once")
    plain = [f"--{k.replace('_', '-')}" for k in SEED_PATHS if getattr(args, k) and SEED_FIELD not in getattr(args, k)]
    if len(seeds) > 1 and plain:
        raise AEAError(f"--seed {args.seed} trains {len(seeds)} runs: {', '.join(plain)} must name each run's folder "
                       f"with {SEED_FIELD}, e.g. --out runs/aea/seed{SEED_FIELD}")
    return seeds


def cmd_train(args: argparse.Namespace) -> None:
    """Train each seed of ``--seed`` in turn in this one process (one torch import and data load for all: the
    workflow's jobs where the profile has ``group_seeds``); every seed's run is exactly the run a process of its own
    would train."""
    from aea.train import check_runtime

    seeds = train_seeds(args)
    set_threads(args.threads)
    profile = load_profile(args.profile)
    overrides = profile_overrides(profile, args.dataset, args.overrides, args.pretrained)
    split = None
    for seed in seeds:
        paths = {k: Path(getattr(args, k).replace(SEED_FIELD, str(seed))) if getattr(args, k) else None
                 for k in SEED_PATHS}
        cfg = resolve(profile, args.dataset, args.method, overrides, seed)
        check_runtime(cfg)  # before the run's folder exists: a refused config leaves nothing behind
        with run_history(paths["out"]):  # a job's refused GPU is an attempt of the run: its train.log says so
            split = train_seed(args, profile, cfg, overrides, paths, split)


@contextmanager
def run_history(run_dir: Path) -> Iterator[None]:
    """Append this attempt's log to ``run_dir``/train.log, under a header naming the host and SLURM job: one file
    holds every attempt at the run (a retry, or the job of a rerun after a lost head), each kept whole, and why an
    attempt ended on an error. The header and that last line go to the file only (the console's error stays one
    line); a folder holding what aea did not write gets nothing (aea refuses it untouched)."""
    if run_dir.is_dir() and any(e.is_dir() or not is_run_file(e.name) for e in run_dir.iterdir()):
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / HISTORY_FILE, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def write(level: int, message: str, *args) -> None:
        handler.emit(log.makeRecord(log.name, level, __file__, 0, message, args, None))

    job = os.environ.get("SLURM_JOB_ID")
    write(logging.INFO, "=== aea train %s: attempt started %s on %s%s ===", run_dir,
          time.strftime("%Y-%m-%d %H:%M:%S %Z"), socket.gethostname(), f", SLURM job {job}" if job else "")
    log.addHandler(handler)
    try:
        yield
    except (AEAError, OSError, KeyboardInterrupt) as error:
        write(logging.ERROR, "attempt ended: %s", str(error) or type(error).__name__)
        raise
    finally:
        log.removeHandler(handler)
        handler.close()


def train_seed(args: argparse.Namespace, profile: Profile, cfg: RunConfig, overrides: dict,
               paths: dict[str, Path | None], split: Split | None) -> Split:
    """One seed of ``aea train``; ``split``: the dataset an earlier seed loaded, else None (it is loaded under the
    run's lock). Returns the dataset."""
    from aea.data.datasets import load_dataset
    from aea.device import given_gpu, training_device
    from aea.runs import claim_run_dir
    from aea.train import train

    out = paths["out"]
    device = training_device(cfg, args.gpus)
    unused = given_gpu(args.gpus) if device.type == "cpu" else None
    log.info("device: %s%s", device, f" (device={cfg.device}; the GPU given, {unused}, is not used)" if unused else "")
    if paths["write_baseline1"]:  # resolved only then: a run's own overrides need not make a valid Baseline 1
        b1_overrides = baseline1_overrides(overrides)
        b1_cfg = resolve(profile, args.dataset, "baseline1", b1_overrides, cfg.seed)
        if run_inputs(b1_cfg, b1_overrides).get("basic_of", ("",))[0] != cfg.method:
            raise AEAError(f"--write-baseline1: Baseline 1 is not the basic network of a {cfg.method} run with "
                           f"triplet_mode={b1_cfg.triplet_mode}, share_basic={b1_cfg.share_basic}; train it on its own")
    with claim_run_dir(out, wait=args.wait_lock):
        if split is None:
            split = load_dataset(cfg.dataset, data_root(cfg.data_root), check_counts=cfg.check_counts)
        runs = [(cfg, out, overrides, paths["basic_of"])]
        if paths["write_baseline1"]:  # then Baseline 1 from this run's basic network, in the same process
            runs.append((b1_cfg, paths["write_baseline1"], b1_overrides, out))
        for run_cfg, run_out, run_overrides, basic_of in runs:
            with run_history(run_out) if run_out != out else nullcontext(), \
                    claim_run_dir(run_out, wait=args.wait_lock) if run_out != out else nullcontext():
                if args.replace_changed:
                    discard_changed_run(run_cfg, split.signature, run_out)
                model = train(run_cfg, split, run_out, overrides=run_overrides, baseline1_dir=paths["baseline1"],
                              basic_of=basic_of)
                log.info("model written to %s", model)
                if args.evaluate:
                    evaluate_and_write(run_out, split, run_cfg.device)
    return split


def discard_changed_run(cfg: RunConfig, data_signature: str, out_dir: Path) -> None:
    """``--replace-changed``: empty ``out_dir`` when it holds a run made with another config or on other data
    (``data.json``), so the run starts afresh instead of being refused (the workflow passes it: an edited
    profile value or regenerated data reruns the run).

    Only the files aea writes there are deleted (``aea.runs.RUN_FILES``), except ``*.log`` (the workflow's log of
    this very job is open in there) and the lock file; a folder holding anything else is refused untouched."""
    from aea.io import read_json

    if not (out_dir / CONFIG_FILE).is_file():
        return
    try:
        same_config = run_config(out_dir) == cfg
    except AEAError:  # a config this version cannot read is another config too
        same_config = False
    try:
        same_data = read_json(out_dir / DATA_FILE).get("signature") == data_signature
    except FileNotFoundError:  # a run from before runs recorded their data
        same_data = True
    except (OSError, ValueError, AttributeError):
        same_data = False
    if same_config and same_data:
        return
    entries = sorted(out_dir.iterdir())
    foreign = [e.name + ("/" if e.is_dir() else "") for e in entries if e.is_dir() or not is_run_file(e.name)]
    if foreign:
        shown = ", ".join(foreign[:6]) + (f" and {len(foreign) - 6} more" if len(foreign) > 6 else "")
        raise AEAError(f"--replace-changed: {out_dir} holds {shown}, which aea did not write, beside a run made "
                       f"with another {'config' if not same_config else 'data'}; nothing was deleted: move those "
                       "away, or give this run another --out")
    log.warning("%s holds a run made with another %s: deleting it to start afresh", out_dir,
                "config" if not same_config else "data")
    for entry in entries:
        if entry.suffix != ".log" and entry.name != LOCK_FILE:
            entry.unlink()


def evaluate_and_write(run_dir: Path, split, device: str, out: Path | None = None) -> None:
    """Evaluate the run on ``split``, metrics to ``out`` (default: the run's metrics.json)."""
    from aea.evaluate import evaluate_run

    metrics = {**evaluate_run(run_dir, split, device=device), "data_signature": split.signature}
    out = out or run_dir / METRICS_FILE
    write_json(out, metrics)
    log.info("%s %s: rank-1 %.1f%%, mAP %.1f%% (official) / %.1f%% (non-interpolated) -> %s", metrics["dataset"],
             metrics["method"], 100 * metrics["rank1"], 100 * metrics["map_official"],
             100 * metrics["map_noninterp"], out)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from aea.data.datasets import load_dataset

    cfg = run_config(Path(args.run))
    overrides = parse_overrides(args.overrides)
    if set(overrides) - set(EVALUATE_KEYS):
        raise AEAError(f"aea evaluate takes only {', '.join(f'{k}=...' for k in EVALUATE_KEYS)} (the test set as "
                       f"loaded), not {', '.join(sorted(set(overrides) - set(EVALUATE_KEYS)))}; the model's own "
                       "settings come from its run")
    set_threads(args.threads)
    root = Path(args.data_root) if args.data_root else data_root(cfg.data_root)
    split = load_dataset(cfg.dataset, root, check_counts=overrides.get("check_counts", cfg.check_counts))
    evaluate_and_write(Path(args.run), split, args.device or cfg.device, Path(args.out) if args.out else None)


def table_file_set(name: str, out_dir: str) -> AbstractContextManager[None]:
    """The files ``aea table NAME`` / ``aea compare NAME`` write into ``out_dir``, written as one set: a kill
    leaves the old set or the new one (``aea.io.file_set``; the journal ``.NAME.set.json`` marks a cut)."""
    from aea.io import file_set
    from aea.tables import get_spec

    if name not in ("interpretations", "mechanism"):
        get_spec(name)  # an unknown name is refused before it becomes a path
    return file_set(Path(out_dir) / f".{name}.set.json", name)


def cmd_table(args: argparse.Namespace) -> None:
    from aea.tables import CHOICES, make_interpretations, make_table

    metrics = [Path(p) for p in args.metrics]
    with table_file_set(args.name, args.out_dir):
        if args.name == "mechanism":
            from aea.tables.mechanism import make_mechanism

            make_mechanism(metrics, Path(args.out_dir))
        elif args.name == "interpretations":
            paper = resolve(load_profile("paper"), "market1501", "aea", {}, 0)  # which reading the paper profile uses
            make_interpretations(metrics, Path(args.out_dir), {c.key: getattr(paper, c.key) for c in CHOICES})
        else:
            make_table(args.name, metrics, Path(args.out_dir), Path(args.paper_dir))


def cmd_compare(args: argparse.Namespace) -> None:
    from aea.tables import compare_table

    with table_file_set(args.name, args.out_dir):
        claims = compare_table(args.name, Path(args.out_dir), Path(args.paper_dir))
    for row in claims.drop_duplicates("claim").itertuples():
        log.info("%s: %s (%s)", row.verdict, row.claim, row.detail)
    log.info("diff written to %s", Path(args.out_dir) / f"{args.name}.diff.md")


def cmd_paper_template(args: argparse.Namespace) -> None:
    from aea.tables.paper import write_paper_template

    log.info("wrote %s: fill its empty values from the paper (or leave them empty: never guessed)",
             write_paper_template(args.name, args.paper_dir))


def cmd_show(args: argparse.Namespace) -> None:
    from aea import show
    from aea.data.datasets import load_dataset

    if args.count < 1:
        raise AEAError(f"--count {args.count}: give the number of images to show, >= 1 (e.g. --count 8)")
    run_dir = Path(args.run)
    cfg = run_config(run_dir)
    split = load_dataset(cfg.dataset, data_root(cfg.data_root), check_counts=cfg.check_counts)
    if not 0 <= args.query < len(split.query):
        raise AEAError(f"--query {args.query}: {cfg.dataset} has queries 0..{len(split.query) - 1}; pick one of them")
    out = Path(args.out or run_dir / f"{args.what}.png")
    if args.what == "ranks":
        show.show_ranks(run_dir, split, out, query=args.query, device=args.device)
    elif args.what == "attention":
        show.show_attention(run_dir, split, out, count=args.count, device=args.device)
    else:
        show.show_erasing(run_dir, split, out, count=args.count, device=args.device)
    log.info("wrote %s", out)


def cmd_plan(args: argparse.Namespace) -> None:
    from aea.plan import dry_run_commands, parse_train_command, plan, trainings_of

    commands = dry_run_commands(args.target, args.profile, snakefile=args.snakefile, directory=args.directory,
                                everything=args.all)
    trainings = trainings_of(commands)
    train_jobs = sum(1 for c in commands if parse_train_command(c))
    print(f"aea plan {args.target} --profile {args.profile}: {len(commands)} jobs to run"
          f"{' (finished ones included: --all)' if args.all else ' (finished runs left out; --all counts them)'}, "
          f"{train_jobs} of them `aea train` jobs of {len(trainings)} runs")
    print(plan(trainings, args.benchmarks))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aea", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate synthetic datasets or check a dataset's layout and counts")
    data.add_argument("action", choices=("make-synthetic", "make-mechanism", "check", "stand-in-weights"))
    data.add_argument("--dataset", nargs="+", choices=DATASETS, default=list(DATASETS))
    data.add_argument("--root", default="data", help="data root (default: data)")
    data.add_argument("--size", default="smoke",
                      help="synthetic size: smoke, tiny, market-scale (Market-1501's ids, distractors and junk), "
                      "or full (CUHK03 only: the real protocol's file lists)")
    data.add_argument("--layout", choices=("mat", "np"), default="mat",
                      help="make-synthetic, CUHK03: the .mat release (mat) or the CUHK03-NP folders (np)")
    data.add_argument("--protocol-dir",
                      help="make-synthetic --size full: folder with the real cuhk03_new_protocol_config_*.mat")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--variant", default="redundant",
                      help="make-mechanism: redundant (every body region identifies) "
                      "or single-cue (only the upper body does)")
    data.add_argument("--occlusion", type=float, default=0.0,
                      help="make-mechanism: probability p that a test image has one body region occluded")
    data.add_argument("--generator-version", type=int, default=2,
                      help="make-mechanism: 2 (the first registered experiment) or 3 (docs/mechanism.md)")
    data.add_argument("--occluded-region", default="any",
                      help="make-mechanism, version 3: the region an occluded test image hides (upper, lower, head, "
                      "shoes, item) or any")
    data.add_argument("--json", help="check: also write the counts to this JSON file")
    data.add_argument("--out", help="stand-in-weights: the file to write (random weights in torchvision's format, "
                      "for rehearsals; not ImageNet weights)")
    data.add_argument("--arch", default="resnet50", help="stand-in-weights: the architecture (default resnet50)")
    data.add_argument("--no-check-counts", dest="check_counts", action="store_false",
                      help="check: accept a release whose image counts differ from the documented ones")
    data.set_defaults(func=cmd_data)

    train = sub.add_parser("train", help="train one method on one dataset (resumes from a checkpoint)")
    train.add_argument("--dataset", required=True, choices=DATASETS)
    train.add_argument("--method", required=True, choices=METHODS)
    train.add_argument("--profile", default="smoke", help="smoke, tiny, paper or a YAML path")
    train.add_argument("--seed", default="0", help="the seed, or several (0,1,2) trained in turn by this process; "
                       "then every run path given names its seed's folder with {seed}")
    train.add_argument("--out", required=True, help="run directory (with {seed} for several seeds)")
    train.add_argument("--baseline1", help="finished Baseline-1 run of the same seed: static masks (Baseline 4, "
                       "AOS) and, with share_basic=true, the basic network of Baselines 3/4, REDA, AOS and controls")
    train.add_argument("--basic-of", help="finished AEA run of the same seed (share_basic=true, per_network "
                       "triplet): Baseline 1 is its basic network, written without training")
    train.add_argument("--write-baseline1", metavar="DIR", help="AEA, share_basic=true: then write the Baseline-1 "
                       "run of the same seed from this run's basic network into DIR (as --basic-of, one process)")
    train.add_argument("--pretrained", help="ImageNet weights file, or 'torchvision-cache'")
    train.add_argument("--threads", type=int, help="CPU threads for torch")
    train.add_argument("--evaluate", action="store_true", help="then evaluate and write metrics.json")
    train.add_argument("--replace-changed", action="store_true",
                       help="if --out holds a run made with another config, delete it and start afresh")
    train.add_argument("--wait-lock", type=float, default=0.0, metavar="SECONDS",
                       help="wait this long for another `aea train` writing --out to end (default 0: refuse at once)")
    train.add_argument("--gpus", type=int, default=0, help="GPUs this job was given (the workflow's gpus_per_run): "
                       "above 0, training stops unless CUDA is usable or device=cpu")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. erase_ratio=20")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="rank query against gallery and write the run's metrics.json")
    evaluate.add_argument("--run", required=True, help="run directory")
    evaluate.add_argument("--device", help="override the run's device (auto, cpu, cuda)")
    evaluate.add_argument("--threads", type=int)
    evaluate.add_argument("overrides", nargs="*", metavar="key=value",
                          help=f"how the test set is loaded: {', '.join(EVALUATE_KEYS)} (e.g. check_counts=false "
                          "after deleting a broken image)")
    evaluate.add_argument("--data-root", help="evaluate on this data root's test set instead of the run's "
                          "(e.g. the same generated data with test-time occlusion)")
    evaluate.add_argument("--out", help="metrics file (default: <run>/metrics.json)")
    evaluate.set_defaults(func=cmd_evaluate)

    table = sub.add_parser("table", help="collect runs' metrics.json into a results table and diff it")
    table.add_argument("name", help="table2, table6, table7, table8, table9, fig6, fig7, interpretations "
                       "or mechanism")
    table.add_argument("--metrics", nargs="+", required=True, help="metrics.json files of the table's runs")
    table.add_argument("--out-dir", default="results")
    table.add_argument("--paper-dir", default="results/paper")
    table.set_defaults(func=cmd_table)

    compare = sub.add_parser("compare", help="diff a written table against the paper CSV again")
    compare.add_argument("name")
    compare.add_argument("--out-dir", default="results")
    compare.add_argument("--paper-dir", default="results/paper")
    compare.set_defaults(func=cmd_compare)

    template = sub.add_parser("paper-template", help="write results/paper/<table>.csv for a table you added: every "
                              "cell, values empty, to fill from the paper")
    template.add_argument("name", help="a table of aea.tables.specs.TABLES")
    template.add_argument("--paper-dir", default="results/paper")
    template.set_defaults(func=cmd_paper_template)

    show = sub.add_parser("show", help="pictures of a trained run: attention maps, erased images, rank lists")
    show.add_argument("what", choices=("attention", "erasing", "ranks"))
    show.add_argument("--run", required=True, help="run directory")
    show.add_argument("--out", help="PNG path (default: <run>/<what>.png)")
    show.add_argument("--count", type=int, default=8, help="images to show (attention, erasing)")
    show.add_argument("--query", type=int, default=0, help="query index (ranks)")
    show.add_argument("--device", default="auto")
    show.set_defaults(func=cmd_show)

    plan = sub.add_parser("plan", help="what a workflow target costs: trainings, epochs, iterations, projected hours")
    plan.add_argument("target", help="all, a table (table2, ..., fig7), interpretations, mechanism, or a Snakemake "
                      "target (results/all, results/table2.csv, a rule or a path)")
    plan.add_argument("--profile", default="smoke", help="the workflow's profile (smoke, tiny, paper or a YAML path)")
    plan.add_argument("--benchmarks", default="benchmarks", help="root of the step-time CSVs (default: benchmarks)")
    plan.add_argument("--all", action="store_true", help="count finished runs too (snakemake --forceall)")
    plan.add_argument("--snakefile", default="Snakefile", help="the workflow (default: ./Snakefile)")
    plan.add_argument("--directory", help="the workflow's working directory (default: the current one)")
    plan.set_defaults(func=cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        args.func(args)
    except AEAError as error:
        print(f"aea: error: {error}", file=sys.stderr)
        return 2
    except (MemoryError, ImportError, RuntimeError, OSError) as error:
        memory = out_of_memory(error)
        if memory is not None:
            print(f"aea: error: `aea {args.command}` ran out of memory ({memory}); {MEMORY_FIX}", file=sys.stderr)
            return 2
        if not isinstance(error, OSError) or error.errno not in WRITE_ERRNOS:
            raise
        print(f"aea: error: {error.filename or 'a file'}: {error.strerror}; {WRITE_ERRNOS[error.errno]}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aea: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
