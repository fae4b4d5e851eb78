"""What a workflow target costs before anyone submits it (``aea plan``).

The workflow itself says which trainings a target needs: ``snakemake --dry-run`` lists every job that would run
(finished runs are left out unless ``--all``), with the ``aea train`` command of each. Each command is resolved
as ``aea train`` resolves it (profile, dataset, method, overrides, seed) and costed with the rules of
``aea.methods``: a Baseline 1 read off AEA's run trains nothing (``read_off``, the ``--basic-of`` jobs and the
Baseline 1 that AEA's own job writes), a run that takes its basic network from Baseline 1 trains only the
complementary network and skips the warm-up (``basic_from_baseline1``: Baselines 3/4, REDA, AOS), a two-network
run trains its basic network alone during the warm-up epochs. Iterations per epoch are the P x K sampler's
(training identities // P, capped by ``max_iters_per_epoch``).

Step times come from ``benchmarks/<device>/*.csv`` (``aea.benchmarks``: the device check and the benchmarks
write them): per device, the latest AEA step (two networks) and Baseline-1 step (one network) measured at the
run's network, image size and batch. A one-network step costs a complementary-only step too (its erasing
needs no basic network; the static masks of Baseline 4 / AOS, one pass over the training set, are not
counted). Where no GPU measurement exists, a clearly labelled estimate from a published ResNet-50 training
throughput (``aea.devicecheck.PUBLISHED_RESNET50``, scaled by pixels) stands beside the measured figures.
Evaluation (each training job evaluates its run) is not projected.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aea.benchmarks import DEFAULT_ROOT, arch_label, read_rows
from aea.config import Profile, RunConfig, load_profile, parse_overrides, resolve
from aea.errors import AEAError
from aea.methods import get_method

#: Short target names -> the workflow's rules (a rule name is a Snakemake target; no output path is restated).
TARGET_RULES = {"all": "all_tables", "interpretations": "interpretations", "mechanism": "mechanism_table"}
TRAIN_COMMAND = re.compile(r"(?:^|\s)aea train (.*?)(?:\s+>|$)")


@dataclass(frozen=True)
class Training:
    """One ``aea train`` job of the dry run, resolved and counted."""

    cfg: RunConfig
    read_off: bool  # the run's network is another run's (Baseline 1 from AEA): nothing trained
    writes_baseline1: bool  # the job also writes the Baseline 1 read off its basic network
    epochs: int  # epochs trained
    iters_per_epoch: int
    one_network_steps: int  # Baseline 1, a warm-up epoch, a complementary network alone
    two_network_steps: int  # both networks (AEA's joint phase)

    @property
    def iterations(self) -> int:
        return self.one_network_steps + self.two_network_steps


def target_rule(target: str) -> str:
    """``all`` / ``results/all`` -> all_tables, ``table2`` / ``results/table2.csv`` -> table_table2, a path or
    rule name otherwise as given."""
    from aea.tables import TABLES

    name = Path(target).name.removesuffix(".csv") if target.startswith("results/") else target
    if name in TABLES:
        return f"table_{name}"
    return TARGET_RULES.get(name, target)


def dry_run_commands(target: str, profile: str, *, snakefile: str | Path = "Snakefile",
                     directory: str | Path | None = None, everything: bool = False) -> list[str]:
    """The shell commands of every job ``snakemake --dry-run`` would run for ``target`` under ``profile``."""
    cmd = [sys.executable, "-m", "snakemake", "--dry-run", "--printshellcmds", "--snakefile", str(snakefile),
           "--config", f"profile={profile}", "--cores", "1"]
    if directory is not None:
        cmd += ["--directory", str(directory)]
    if everything:
        cmd.append("--forceall")
    done = subprocess.run(cmd + [target_rule(target)], capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-6:])
        raise AEAError(f"snakemake --dry-run failed for {target!r} (profile {profile}):\n{tail}")
    if "Nothing to be done" in done.stdout + done.stderr:
        return []
    return [line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("Shell command:")]


def train_ids(cfg: RunConfig, profile: Profile) -> int:
    """Training identities of the run's data set: the generator's size for generated data (``profile``'s
    ``synthetic``), the release's documented count for real data."""
    from aea.data.bodyparts import MECHANISM_SIZES
    from aea.data.datasets import DOCUMENTED_COUNTS
    from aea.data.synthetic import SYNTHETIC_SIZES

    if profile.synthetic and cfg.profile.startswith("mechanism"):
        return MECHANISM_SIZES[profile.synthetic].train_ids
    if profile.synthetic in SYNTHETIC_SIZES:
        return SYNTHETIC_SIZES[profile.synthetic].train_ids
    return DOCUMENTED_COUNTS[cfg.dataset]["train_ids"]


def parse_train_command(command: str) -> list[Training]:
    """The runs of the ``aea train`` job in a shell command line, resolved and counted, one per seed of its
    ``--seed`` (a profile with ``group_seeds`` trains all its seeds in one job); [] when the line trains nothing."""
    found = TRAIN_COMMAND.search(command)
    if found is None:
        return []
    words = shlex.split(found.group(1))
    options: dict[str, str] = {}
    items: list[str] = []
    flags = {"--evaluate", "--replace-changed"}  # the options without a value
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and word not in flags:
            options[word] = words[i + 1]
            i += 2
            continue
        if not word.startswith("--"):
            items.append(word)
        i += 1
    profile = load_profile(options["--profile"])
    dataset, method = options["--dataset"], options.get("--method", "aea")
    overrides = profile.canonical(dataset, parse_overrides(items))
    return [count_training(resolve(profile, dataset, method, overrides, int(seed)), profile,
                           read_off="--basic-of" in options, writes_baseline1="--write-baseline1" in options)
            for seed in options["--seed"].split(",")]


def count_training(cfg: RunConfig, profile: Profile, *, read_off: bool = False,
                   writes_baseline1: bool = False) -> Training:
    """Epochs, iterations and steps of one run of ``profile`` (the one the command names: a file's profile is found
    by its path, not by the name it gives itself; see the module docstring)."""
    spec = get_method(cfg.method, cfg.peer_form)
    per_epoch = train_ids(cfg, profile) // cfg.batch_p
    if cfg.max_iters_per_epoch is not None:
        per_epoch = min(per_epoch, cfg.max_iters_per_epoch)
    warmup = min(cfg.warmup_epochs, cfg.epochs)
    if read_off:
        return Training(cfg, True, writes_baseline1, 0, per_epoch, 0, 0)
    if spec.basic_from_baseline1(cfg.triplet_mode, cfg.share_basic):  # complementary network only, after warm-up
        epochs = cfg.epochs - warmup
        return Training(cfg, False, writes_baseline1, epochs, per_epoch, epochs * per_epoch, 0)
    if spec.two_networks:
        return Training(cfg, False, writes_baseline1, cfg.epochs, per_epoch, warmup * per_epoch,
                        (cfg.epochs - warmup) * per_epoch)
    return Training(cfg, False, writes_baseline1, cfg.epochs, per_epoch, cfg.epochs * per_epoch, 0)


def shape_of(cfg: RunConfig) -> tuple[str, str, str, str]:
    """(arch, height, width, batch) as the benchmark CSVs write them."""
    return arch_label(cfg.arch, cfg.base_width), str(cfg.height), str(cfg.width), str(cfg.batch_p * cfg.batch_k)


@dataclass(frozen=True)
class StepTimes:
    """Seconds of a two-network (AEA) and a one-network (Baseline 1) step at one shape on one device."""

    device: str
    label: str  # what the figures are: "measured <date>, <device name>, <threads> threads, <precision>" or estimate
    two: float
    one: float
    core_hours_factor: int  # CPU threads (core-hours = hours x threads); 0 for a GPU
    sources: str


def measured_step_times(shape: tuple[str, str, str, str], root: str | Path = DEFAULT_ROOT) -> list[StepTimes]:
    """Per device, the latest measured AEA and Baseline-1 step seconds at ``shape`` (benchmark CSVs)."""
    latest: dict[tuple[str, str], dict[str, str]] = {}
    rows = read_rows(root)
    load = {r["file"]: r["value"] for r in rows if r["section"] == "machine" and r["name"] == "load average"}
    for r in rows:
        if r["section"] == "train" and r["name"] == "step seconds" and r["method"] in ("aea", "baseline1") \
                and (r["arch"], r["height"], r["width"], r["batch"]) == shape:
            latest[(r["device"], r["method"])] = r  # rows come sorted by date: the last is the latest
    out = []
    for device in sorted({d for d, _ in latest}):
        two, one = latest.get((device, "aea")), latest.get((device, "baseline1"))
        if two is None or one is None:
            continue
        cpu = two["kind"] == "cpu"
        label = (f"measured {two['date'][:10]} on {two['device_name']} ({two['kind']}, "
                 f"{two['threads'] + ' threads, ' if cpu else ''}{two['precision']}, torch {two['torch']}"
                 + (f"; 1-minute load average {load[two['file']]} at start / end" if two["file"] in load else "")
                 + ")")
        sources = two["file"] if two["file"] == one["file"] else f"{two['file']}, {one['file']}"
        out.append(StepTimes(device, label, float(two["value"]), float(one["value"]),
                             int(two["threads"]) if cpu else 0, sources))
    return out


def published_step_times(cfg: RunConfig) -> StepTimes | None:
    """The estimate from the published ResNet-50 throughput, for the paper's network only (ResNet-50)."""
    from aea.devicecheck import PUBLISHED_RESNET50, published_consumption

    if cfg.arch != "resnet50":
        return None
    batch = cfg.batch_p * cfg.batch_k
    need = published_consumption(cfg.height, cfg.width)  # loaded images/s of each step kind
    return StepTimes(f"estimate-{PUBLISHED_RESNET50['gpu'].split()[0].lower()}",
                     f"ESTIMATE, not measured (no GPU figure exists yet): {PUBLISHED_RESNET50['images_per_s']:.0f} "
                     f"images/s ResNet-50 training at {PUBLISHED_RESNET50['height']}x{PUBLISHED_RESNET50['width']} on "
                     f"{PUBLISHED_RESNET50['gpu']}, scaled by pixels to {cfg.height}x{cfg.width}; it leaves out the "
                     "fixed cost of a batch-32 step and conv5's removed stride (both slower) and an H100's lead over "
                     "an A100 (faster)",
                     batch / need["aea"], batch / need["baseline1"], 0, PUBLISHED_RESNET50["source"])


def plan(trainings: Sequence[Training], root: str | Path = DEFAULT_ROOT) -> str:
    """The report: counts per profile and method (``jobs`` counts runs: a grouped job holds several), then the
    projected hours per device for each shape."""
    lines = []
    by_method: dict[tuple[str, str], list[Training]] = defaultdict(list)
    for t in trainings:
        by_method[(t.cfg.profile, t.cfg.method)].append(t)
    head = f"{'profile':<15}{'method':<12}{'runs':>6}{'trained':>9}{'epochs':>9}{'iterations':>12}  note"
    lines += [head, "-" * len(head)]
    for (profile, method), ts in sorted(by_method.items()):
        trained = [t for t in ts if not t.read_off]
        notes = []
        if len(trained) < len(ts):
            notes.append(f"{len(ts) - len(trained)} read off AEA's run (no training)")
        extra = sum(t.writes_baseline1 for t in ts)
        if extra:
            notes.append(f"also writes {extra} Baseline-1 run(s) read off its basic network")
        if any(t.two_network_steps == 0 and t.cfg.method != "baseline1" and not t.read_off
               and get_method(t.cfg.method, t.cfg.peer_form).two_networks for t in trained):
            notes.append("complementary network only (basic network from Baseline 1)")
        lines.append(f"{profile:<15}{method:<12}{len(ts):>6}{len(trained):>9}{sum(t.epochs for t in ts):>9}"
                     f"{sum(t.iterations for t in ts):>12}  {'; '.join(notes)}")
    trained = [t for t in trainings if not t.read_off]
    lines.append(f"{'total':<27}{len(trainings):>6}{len(trained):>9}{sum(t.epochs for t in trainings):>9}"
                 f"{sum(t.iterations for t in trainings):>12}")
    lines.append("")
    by_shape: dict[tuple[str, str, str, str], list[Training]] = defaultdict(list)
    for t in trained:
        by_shape[shape_of(t.cfg)].append(t)
    for shape, ts in sorted(by_shape.items()):
        two, one = sum(t.two_network_steps for t in ts), sum(t.one_network_steps for t in ts)
        profiles = ", ".join(sorted({t.cfg.profile for t in ts}))
        lines.append(f"{shape[0]} at {shape[1]}x{shape[2]}, batch {shape[3]} ({profiles}): {two:,} two-network steps"
                     f" + {one:,} one-network steps")
        times = measured_step_times(shape, root)
        estimate = published_step_times(ts[0].cfg)
        if not times:
            lines.append(f"  no step time measured at this shape under {root}/ (run workflow/scripts/device-check.sh)")
        for st in times + ([estimate] if estimate else []):
            hours = (two * st.two + one * st.one) / 3600
            cost = f"{hours:,.0f} CPU hours = {hours * st.core_hours_factor:,.0f} core-hours" if st.core_hours_factor \
                else f"{hours:,.1f} GPU-hours"
            lines.append(f"  {st.device}: {cost} (AEA step {st.two:.4g} s, Baseline-1 step {st.one:.4g} s)")
            lines.append(f"    {st.label}")
            lines.append(f"    source: {st.sources}")
    lines.append("Not included: evaluation (every training job evaluates its run), Baseline 4 / AOS static masks.")
    return "\n".join(line.rstrip() for line in lines)


def trainings_of(commands: Iterable[str]) -> list[Training]:
    """Every run the ``aea train`` jobs among ``commands`` train (or read off)."""
    return [t for c in commands for t in parse_train_command(c)]
