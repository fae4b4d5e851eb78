"""The workflow on a real SLURM cluster: a single node on loopback (workflow/scripts/slurm-local.sh), the shipped
profile (workflow/profiles/slurm) with README's overrides for a CPU-only cluster.

The cluster tests carry the `slurm` marker and are left out of the default `pytest` run: they need root (the
script installs Debian's SLURM packages when missing and starts the daemons). CI runs them after the main suite:
`pytest -m slurm` (`-o log_cli=true --log-cli-level=INFO` shows the timings). The parse test has no marker: it
is cheap and guards every job's start-up on a cluster.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aea.config import load_profile
from aea.tables.specs import TABLES

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "workflow/scripts/slurm-local.sh"
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
TABLE2 = "results/profiles/tiny/table2.csv"  # the tiny profile is not the default: its tables go here
RUNS = "results/runs/tiny"
LOCAL = ["--cores", "2", "--config", "profile=tiny", "train_threads=1"]
# README's command for a CPU-only cluster: the shipped profile, then what a CPU-only node needs.
ON_SLURM = ["--workflow-profile", "workflow/profiles/slurm", "--config", "profile=tiny", "train_threads=1",
            "gpus_per_run=0", "--set-resources", "train:mem_mb=2000", "train_aea_and_baseline1:mem_mb=2000",
            "--slurm-init-seconds-before-status-checks", "2"]
# The training the scancel test kills: AEA (two networks, the longest epochs), whose job also writes the Baseline-1
# run read off its basic network (rule train_aea_and_baseline1), so the retry must rewrite both.
KILLED = ("market1501", "aea", 0)
TRAINING_RULES = ("train", "train_aea_and_baseline1")

# Runs `snakemake -n` in a fresh interpreter that records the first import of torch (and who made it).
PARSE_WITHOUT_TORCH = """
import sys, traceback
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and "torch_stack" not in globals():
            stack = traceback.format_stack()
            globals()["torch_stack"] = "".join(frame for frame in stack if "importlib._bootstrap" not in frame)
        return None
sys.meta_path.insert(0, Watch())
from snakemake.cli import main
sys.argv = ["snakemake", *sys.argv[1:]]
try:
    main()
finally:
    print("TORCH IMPORTED:\\n" + globals()["torch_stack"] if "torch" in sys.modules else "TORCH NOT IMPORTED")
"""


def copy_workflow(clone: Path) -> Path:
    """The workflow as a user's clone has it, without anyone's results (results/paper ships with the code)."""
    (clone / "results").mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", clone)
    shutil.copytree(REPO / "workflow", clone / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "results/paper", clone / "results/paper")
    return clone


def workflow_env(data: Path) -> dict[str, str]:
    env = {**os.environ, "AEA_DATA": str(data)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the `aea` of this install
    return env


def snakemake(clone: Path, args: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, *args, "--", TABLE2], cwd=clone, env=workflow_env(clone.parent / "data"),
                          capture_output=True, text=True, timeout=timeout)


def test_parsing_the_workflow_does_not_import_torch(tmp_path):
    """Every SLURM job starts Snakemake twice (sbatch, then srun) and each start parses the workflow: it must not
    pay for importing torch (about 1.5 s each time); `aea train` imports it in its own process."""
    clone = copy_workflow(tmp_path / "clone")
    done = subprocess.run([sys.executable, "-c", PARSE_WITHOUT_TORCH, "-n", "--cores", "1", "--config",
                           "profile=tiny", "--", TABLE2], cwd=clone, env=workflow_env(tmp_path / "data"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train" in done.stdout + done.stderr  # the dry run did plan the trainings
    assert "TORCH NOT IMPORTED" in done.stdout, done.stdout[-4000:]


def test_each_run_has_one_rule_as_a_cluster_job_sees_it(tmp_path):
    """A SLURM job runs Snakemake again with --allowed-rules set to its own rule. If `train` could also make AEA's
    run (made by train_aea_and_baseline1), a Baseline-4 job would retrain AEA under `train` inside its own job (other
    code and params than recorded) and delete AEA's outputs when that failed. So under `train` alone the plain AEA
    and Baseline-1 runs have no rule, and the combined rule makes both."""
    clone = copy_workflow(tmp_path / "clone")

    def dry_run(rule: str, target: str) -> str:
        done = subprocess.run([SNAKEMAKE, "-n", "--cores", "1", "--config", "profile=tiny", "--allowed-rules", rule,
                               "--", f"{RUNS}/market1501/{target}/seed0/model.pt"], cwd=clone,
                              env=workflow_env(tmp_path / "data"), capture_output=True, text=True, timeout=300)
        return done.stdout + done.stderr

    for run in ("aea", "baseline1"):
        assert f"No rule to produce {RUNS}/market1501/{run}/seed0/model.pt" in dry_run("train", run)
        assert "rule train_aea_and_baseline1" in dry_run("train_aea_and_baseline1", run)  # missing data, but planned
    assert "No rule to produce" not in dry_run("train", "aea-erase_ratio_20")  # other AEA runs are `train`'s


@pytest.fixture(scope="module")
def cluster():
    """The loopback cluster: started (installing SLURM if needed) unless one is up; stopped only if started here."""
    status = subprocess.run([SCRIPT, "status"], capture_output=True, text=True).stdout
    was_up = re.search(r"^slurmctld: \d+$", status, re.MULTILINE) is not None
    started = time.perf_counter()
    done = subprocess.run([SCRIPT, "up"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"slurm-local.sh up failed (it needs root):\n{done.stderr[-3000:]}"
    log.info("cluster up in %.1f s (already up: %s)", time.perf_counter() - started, was_up)
    yield
    if not was_up:
        subprocess.run([SCRIPT, "down"], check=True, timeout=120)


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory) -> tuple[Path, Path, str]:
    """Tiny Table 2 twice, one run after the other on the same machine: locally, then through SLURM; both clones
    share one data root (made by the local run), as a cluster's shared storage would hold it. Returns the two
    clones and what the SLURM run printed."""
    root = tmp_path_factory.mktemp("slurm")
    local, on_slurm = copy_workflow(root / "local"), copy_workflow(root / "on slurm")
    for clone, args in ((local, LOCAL), (on_slurm, ON_SLURM)):
        started = time.perf_counter()
        done = snakemake(clone, args)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        log.info("%s: tiny table2 in %.1f s", clone.name, time.perf_counter() - started)
    return local, on_slurm, done.stdout + done.stderr


@pytest.mark.slurm
def test_table2_through_slurm_equals_the_local_run(runs):
    local, on_slurm, printed = runs
    assert (on_slurm / TABLE2).read_bytes() == (local / TABLE2).read_bytes()
    rules = "|".join(TRAINING_RULES)
    trainings = re.findall(rf"has been submitted with SLURM jobid \d+ \(log: [^)]*/rule_({rules})/", printed)
    tiny = load_profile("tiny")  # one run per Table 2 method, dataset and seed of the profile
    runs = len(TABLES["table2"].methods) * len(tiny.datasets) * len(tiny.seeds)
    assert len(list((on_slurm / RUNS).glob("*/*/seed*/model.pt"))) == runs
    # One job per run, but AEA's job also writes its Baseline 1 (read off its basic network): one job fewer per
    # dataset and seed.
    units = len(tiny.datasets) * len(tiny.seeds)
    assert sorted(trainings) == sorted(["train"] * (runs - 2 * units) + ["train_aea_and_baseline1"] * units)


def training_log(run: Path) -> list[dict]:
    """train_log.csv without its timings: one row per epoch (losses, accuracies, learning rate)."""
    with open(run / "train_log.csv", newline="") as f:
        return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in csv.DictReader(f)]


def running_jobs(comment: str) -> list[str]:
    """The ids of the running SLURM jobs with this comment (the plugin's: rule_<rule>_wildcards_<values>)."""
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True,
                         check=True).stdout
    return [job for job, job_comment in (line.split(maxsplit=1) for line in out.splitlines()) if job_comment == comment]


@pytest.mark.slurm
def test_a_cancelled_training_resumes_from_its_checkpoint(runs):
    """scancel one training once it has checkpointed: Snakemake's retry (the profile's retries) resubmits it, the
    run resumes from the checkpoint, and the table is still byte-identical to the local run's."""
    local, on_slurm, _ = runs
    dataset, method, seed = KILLED
    run = on_slurm / RUNS / dataset / method / f"seed{seed}"
    before = training_log(run)
    epochs = len(before)
    shutil.rmtree(run)  # the run must train again, in a job of its own (with no checkpoint left)
    (on_slurm / TABLE2).unlink()  # Snakemake remakes a deleted input only for an output that needs remaking
    job = subprocess.Popen([SNAKEMAKE, *ON_SLURM, "--", TABLE2], cwd=on_slurm,
                           env=workflow_env(on_slurm.parent / "data"), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoint.pt").is_file():  # the first epoch is done and saved
            assert job.poll() is None and time.monotonic() < deadline, "the training never checkpointed"
            time.sleep(0.02)
        jobs = running_jobs(f"rule_train_aea_and_baseline1_wildcards_{dataset}_{seed}")
        assert len(jobs) == 1, f"expected the training's one job to be running, squeue shows {jobs}"
        subprocess.run(["scancel", *jobs], check=True)
        output, _ = job.communicate(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, output[-5000:]
    assert f"SLURM-job '{jobs[0]}' failed, SLURM status is: 'CANCELLED'" in output, output[-5000:]
    resumed = re.findall(rf"resuming {re.escape(str(run.relative_to(on_slurm)))} from epoch (\d+)",
                         (run / "train.log").read_text())
    assert len(resumed) == 1 and 1 <= int(resumed[0]) <= epochs, (run / "train.log").read_text()
    log.info("job %s cancelled; the retry resumed from epoch %s of %d", jobs[0], resumed[0], epochs)
    # The epochs before the kill come from the checkpoint, the others were trained again: all as in the first run.
    assert training_log(run) == before
    assert (on_slurm / TABLE2).read_bytes() == (local / TABLE2).read_bytes()
