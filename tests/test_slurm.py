"""The workflow on a real SLURM cluster: a single node on loopback (workflow/scripts/slurm-local.sh), the shipped
SLURM settings (a Snakemake workflow profile, workflow/slurm) with docs/slurm.md's overrides for a CPU-only cluster.

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
import yaml

from aea.config import load_profile
from aea.tables.specs import TABLES

log = logging.getLogger(__name__)
sys.path.insert(0, str(Path(__file__).parent))
from test_workflow import workflow_copy  # noqa: E402  (the workflow as a user's clone has it)

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "workflow/scripts/slurm-local.sh"
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
TABLE2 = "results/profiles/tiny/table2.csv"  # the tiny profile is not the default: its tables go here
RUNS = "results/runs/tiny"
LOCAL = ["--cores", "2", "--config", "profile=tiny", "train_threads=1"]
# docs/slurm.md's command for a CPU-only cluster: the shipped SLURM settings, then what a CPU-only node needs.
ON_SLURM = ["--workflow-profile", "workflow/slurm", "--config", "profile=tiny", "train_threads=1",
            "gpus_per_run=0", "--default-resources", "mem_mb=2000", "runtime=30",
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
    clone = workflow_copy(tmp_path / "clone")
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
    clone = workflow_copy(tmp_path / "clone")

    def dry_run(rule: str, target: str) -> str:
        done = subprocess.run([SNAKEMAKE, "-n", "--cores", "1", "--config", "profile=tiny", "--allowed-rules", rule,
                               "--", f"{RUNS}/market1501/{target}/seed0/model.pt"], cwd=clone,
                              env=workflow_env(tmp_path / "data"), capture_output=True, text=True, timeout=300)
        return done.stdout + done.stderr

    for run in ("aea", "baseline1"):
        assert f"No rule to produce {RUNS}/market1501/{run}/seed0/model.pt" in dry_run("train", run)
        assert "rule train_aea_and_baseline1" in dry_run("train_aea_and_baseline1", run)  # missing data, but planned
    assert "No rule to produce" not in dry_run("train_sweep", "aea-erase_ratio_20")  # AEA runs with overrides


# The rules that use neither torch nor a GPU (LIGHT_JOB in workflow/rules/slurm_head.smk); every other rule takes the
# SLURM settings' default-resources, which are a training's.
LIGHT_RULES = {"synthetic_dataset", "check_dataset", "interpretations", "table_page", "all_tables", "mechanism_data",
               "mechanism_table", "mechanism_v3_data", "mechanism_v3_table", *(f"table_{name}" for name in TABLES)}
PROFILE = REPO / "workflow/slurm/config.yaml"


def dry_run_jobs(clone: Path, args: list[str]) -> list[dict]:
    """Every job of `snakemake -n -p ARGS` (the default target): rule, threads, resources and shell command."""
    done = subprocess.run([SNAKEMAKE, "-n", "-p", *args], cwd=clone, env=workflow_env(clone.parent / "data"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", done.stdout + done.stderr):
        rule = re.match(r"(?:local)?rule (\w+):\n", block)
        resources = re.search(r"^ +resources: (.*)$", block, re.MULTILINE)
        if rule is None or rule[1] == "all":  # `all` only names the targets
            continue
        threads = re.search(r"^ +threads: (\d+)$", block, re.MULTILINE)
        command = re.search(r"^Shell command: (.*)$", block, re.MULTILINE)
        jobs.append({"rule": rule[1], "threads": int(threads[1]) if threads else 1,
                     "resources": dict(re.findall(r"(\w+)=([^,]*)", resources[1])) if resources else {},
                     "command": command[1] if command else ""})
    return jobs


def test_every_job_gets_the_site_settings_and_every_torch_job_a_trainings_resources(tmp_path):
    """The SLURM settings' resources, as a dry run of every rule shows them, with the site settings edited once (as
    a user would, in default-resources): partition and account reach every job; each rule that runs torch (the
    trainings, the mechanism trainings and evaluations, attention maps; any rule not declared light) gets a
    training's memory, time, GPU and threads, and its command uses the threads the job asks SLURM for."""
    clone = workflow_copy(tmp_path / "clone")
    profile = yaml.safe_load(PROFILE.read_text())
    assert "set-resources" not in profile, "a per-rule list misses the rules it does not name"
    site = {**profile["default-resources"], "slurm_account": "lab", "slurm_partition": "gpu"}
    # the profile's settings as command-line arguments: the dry run needs no SLURM plugin
    args = ["--cores", str(profile["cores"]), "--default-resources", *(f"{k}={v}" for k, v in site.items())]
    listed = subprocess.run([SNAKEMAKE, "--list-rules"], cwd=clone, env=workflow_env(tmp_path / "data"),
                            capture_output=True, text=True, timeout=300, check=True).stdout.split()
    seen = set()
    for config in (profile["config"], ["profile=tiny", "train_threads=8", "gpus_per_run=1"]):  # real, generated data
        out = f"results/profiles/{next(c.split('=')[1] for c in config if c.startswith('profile='))}"
        # the default target, and the version-3 mechanism experiment, which runs only when asked for
        targets = ["all", f"{out}/mechanism-v3/mechanism.csv"]
        for job in dry_run_jobs(clone, [*args, "--config", *config, "--", *targets]):
            rule, resources, threads, command = job["rule"], job["resources"], job["threads"], job["command"]
            asked = (resources.get("mem_mb"), resources.get("runtime"), resources.get("gpu", "0"))
            seen.add(rule)
            assert (resources.get("slurm_account"), resources.get("slurm_partition")) == ("lab", "gpu"), job
            if rule in LIGHT_RULES:
                assert asked == ("2000", "30", "0"), job
                continue
            assert (*asked, threads) == ("16000", "1440", "1", 8), job
            assert "--threads" not in command or "--threads 8 " in command, job
            if "aea train" in command:  # a GPU job that cannot use CUDA stops; a rerun's job waits for the first
                assert "--gpus 1 " in command and "--wait-lock 86400 " in command, job
    assert seen == set(listed) - {"all"}, "every rule of the workflow was planned in one of the dry runs"


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
    local, on_slurm = workflow_copy(root / "local"), workflow_copy(root / "on slurm")
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
    assert "invalid option" not in printed  # the plugin's account guess ran `sacct ... | tail -1` without a shell
    rules = "|".join(TRAINING_RULES)
    trainings = re.findall(rf"has been submitted with SLURM jobid \d+ \(log: [^)]*/rule_({rules})/", printed)
    tiny = load_profile("tiny")  # one run per Table 2 method, dataset and seed of the profile
    runs = len(TABLES["table2"].all_methods) * len(tiny.datasets) * len(tiny.seeds)  # the control's runs too
    assert len(list((on_slurm / RUNS).glob("*/*/seed*/model.pt"))) == runs
    # One job per run, but AEA's job also writes its Baseline 1 (read off its basic network): one job fewer per
    # dataset and seed.
    units = len(tiny.datasets) * len(tiny.seeds)
    assert sorted(trainings) == sorted(["train"] * (runs - 2 * units) + ["train_aea_and_baseline1"] * units)


def training_log(run: Path) -> list[dict]:
    """train_log.csv without its timings: one row per epoch (losses, accuracies, learning rate)."""
    with open(run / "train_log.csv", newline="") as f:
        return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in csv.DictReader(f)]


def running_jobs(comment: str, prefix: bool = False) -> list[str]:
    """The ids of the running SLURM jobs with this comment (the plugin's: rule_<rule>_wildcards_<values>), or with a
    comment that starts with it."""
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True,
                         check=True).stdout
    return [job for job, job_comment in (line.split(maxsplit=1) for line in out.splitlines())
            if job_comment == comment or (prefix and job_comment.startswith(comment))]


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
        jobs = running_jobs(f"rule_train_aea_and_baseline1_wildcards_{dataset}", prefix=True)  # (a job of its seeds)
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


def test_a_job_given_a_gpu_that_cuda_cannot_use_stops_unless_the_run_says_cpu(tmp_path, monkeypatch, capsys, caplog):
    """device=auto would train on the CPU without a word where the job's GPU is unusable: `aea train` stops with one
    line, before it reads data or writes anything; device=cpu trains on the CPU on purpose, and the log says so."""
    import torch

    from aea.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("AEA_DATA", str(tmp_path / "no data"))
    train = ["train", "--profile", "tiny", "--dataset", "market1501", "--method", "baseline1"]
    caplog.set_level(logging.INFO, logger="aea")  # as the `aea` command logs
    for given, extra in (("--gpus 1", ["--gpus", "1"]), ("CUDA_VISIBLE_DEVICES=0", [])):
        if not extra:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # what SLURM sets for a job's GPU
        assert main([*train, "--out", str(tmp_path / "run"), *extra]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"aea: error: this job was given a GPU ({given}) but CUDA is not usable here"), error
        assert error.count("\n") == 1 and "device=cpu" in error
        assert [p.name for p in (tmp_path / "run").iterdir()] == ["train.log"]  # the attempt, and why it ended
    assert main([*train, "--out", str(tmp_path / "run"), "--gpus", "1", "device=cpu"]) == 2  # then: no data
    assert "device: cpu (device=cpu; the GPU given, --gpus 1, is not used)" in caplog.messages
    assert "the GPU" not in capsys.readouterr().err  # it stopped at the missing data, past the device check
    history = (tmp_path / "run" / "train.log").read_text()  # every attempt appended, each under its header
    assert history.count(": attempt started ") == 3 and history.count("attempt ended: this job was given a GPU") == 2
    assert "device: cpu (device=cpu" in history.split("attempt started")[3]


def test_a_second_attempt_waits_for_the_first_instead_of_failing(tmp_path):
    """`aea train --wait-lock`: another attempt of the same run (the job of a lost head) waits for the lock holder
    to end, up to the time given; without it, or past it, the refusal is immediate and names the holder."""
    from aea.errors import AEAError
    from aea.runs import claim_run_dir

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
                               "from aea.runs import claim_run_dir\nwith claim_run_dir(Path(sys.argv[1])):\n"
                               "    print('held', flush=True); time.sleep(3)", str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(AEAError, match=r"another `aea train` is writing .*\(waited 1 s\)"):
            with claim_run_dir(tmp_path, wait=1):
                pass
        assert 1 <= time.monotonic() - started < 2.5
        with claim_run_dir(tmp_path, wait=60):  # the holder lets go 3 s after it took the lock
            assert time.monotonic() - started >= 3
    finally:
        holder.kill()
        holder.wait()


def forget_unit(on_slurm: Path, dataset: str, seed: int) -> Path:
    """Delete the AEA unit of ``dataset`` (AEA and the Baseline-1 run read off it) and the table: the next head
    trains the unit again in one job (train_aea_and_baseline1), then Baselines 3 and 4 on the new Baseline 1.
    Returns AEA's run folder."""
    for method in ("aea", "baseline1"):
        shutil.rmtree(on_slurm / RUNS / dataset / method / f"seed{seed}")
    (on_slurm / TABLE2).unlink()
    return on_slurm / RUNS / dataset / "aea" / f"seed{seed}"


def start_head(clone: Path, out: Path) -> subprocess.Popen:
    """The Snakemake head of tiny Table 2 on the cluster, printing into ``out`` (a pipe could fill and block it)."""
    with open(out, "w") as printed:
        return subprocess.Popen([SNAKEMAKE, *ON_SLURM, "--", TABLE2], cwd=clone, stdout=printed,
                                stderr=subprocess.STDOUT, env=workflow_env(clone.parent / "data"), text=True)


def wait_for_running(comment: str, head: subprocess.Popen, out: Path) -> list[str]:
    deadline = time.monotonic() + 300
    while not (jobs := running_jobs(comment, prefix=True)):
        assert head.poll() is None, out.read_text()[-5000:]
        assert time.monotonic() < deadline, f"no job {comment} ran in 300 s"
        time.sleep(0.2)
    return jobs


@pytest.mark.slurm
def test_the_head_survives_a_controller_restart(runs, tmp_path):
    """slurmctld stopped for 30 s while a training runs, then started again (slurm-local.sh outage): the head's
    status queries fail meanwhile; it keeps asking (workflow/rules/slurm_head.smk) instead of dropping its jobs and
    waiting forever, then finishes the workflow, and the table equals the local run's."""
    local, on_slurm, _ = runs
    dataset, _, seed = KILLED
    run = forget_unit(on_slurm, dataset, seed)
    out = tmp_path / "head.log"
    head = start_head(on_slurm, out)
    try:
        wait_for_running(f"rule_train_aea_and_baseline1_wildcards_{dataset}", head, out)
        while not (run / "train.log").is_file():  # the training itself runs (a job step cannot start without
            assert head.poll() is None  # the controller: that job would fail and be retried)
            time.sleep(0.1)
        started = time.perf_counter()
        subprocess.run([SCRIPT, "outage", "30"], check=True, timeout=120)
        head.wait(timeout=600)
        log.info("head done %.1f s after the outage began", time.perf_counter() - started)
    finally:
        if head.poll() is None:
            head.kill()
    printed = out.read_text()
    assert head.returncode == 0, printed[-5000:]
    assert "SLURM did not answer the job status query" in printed, printed[-5000:]  # the outage was seen...
    assert "SLURM answers again" in printed  # ... and outlived
    assert "failed" not in printed, printed[-5000:]  # no job failed, none was retried
    assert (on_slurm / TABLE2).read_bytes() == (local / TABLE2).read_bytes()


def wait_for_text(path: Path, text: str, count: int, head: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 300
    while not path.is_file() or path.read_text().count(text) < count:
        assert head.poll() is None, out.read_text()[-5000:]
        assert time.monotonic() < deadline, f"{path} did not say {text!r} {count} times in 300 s"
        time.sleep(0.2)


@pytest.mark.slurm
def test_a_rerun_after_a_lost_head_waits_for_the_training_in_flight(runs, tmp_path):
    """The head SIGKILLed while a training's job runs: the job goes on. After `--unlock`, the rerun submits that
    training again; the new job waits on the run's lock for the first one (aea train --wait-lock) instead of
    failing, and nothing is retried. train.log keeps both attempts, and the table equals the local run's. A tiny
    training lasts seconds, less than a rerun takes to start, so the test holds the run's lock until both jobs wait
    on it, as a long training would."""
    from aea.runs import claim_run_dir

    local, on_slurm, _ = runs
    dataset, _, seed = KILLED
    run = forget_unit(on_slurm, dataset, seed)
    comment = f"rule_train_aea_and_baseline1_wildcards_{dataset}"  # AEA's unit of the dataset (a job of its seeds)
    out, rerun_out = tmp_path / "head.log", tmp_path / "rerun.log"
    with claim_run_dir(run):
        head = start_head(on_slurm, out)
        try:
            first = wait_for_running(comment, head, out)
            wait_for_text(run / "train.log", "waiting up to", 1, head, out)
        finally:
            head.kill()  # SIGKILL: no clean-up, no cancelling of jobs
            head.wait()
        assert running_jobs(comment, prefix=True) == first, "the training outlives its head"
        unlock = snakemake(on_slurm, [*ON_SLURM, "--unlock"])
        assert unlock.returncode == 0, unlock.stderr[-3000:]
        rerun = start_head(on_slurm, rerun_out)
        try:
            wait_for_text(run / "train.log", "waiting up to", 2, rerun, rerun_out)  # the rerun's job waits too
        except BaseException:
            rerun.kill()
            raise
    try:
        rerun.wait(timeout=600)
    finally:
        if rerun.poll() is None:
            rerun.kill()
    printed = rerun_out.read_text()
    assert rerun.returncode == 0, printed[-5000:]
    assert "Error in rule" not in printed and "Trying to restart" not in printed, printed[-5000:]
    train_log = (run / "train.log").read_text()
    attempts = re.findall(rf"=== aea train {re.escape(str(run.relative_to(on_slurm)))}: attempt started .*, SLURM job "
                          r"(\d+) ===", train_log)  # (the job's Baseline-1 run, written from AEA's, logs here too)
    assert len(attempts) == 2 and attempts[0] == first[0], train_log  # the first attempt's log is kept
    # each attempt's SLURM log is kept (successful jobs' too) and found from the run folder
    status = subprocess.run([REPO / "workflow/scripts/slurm-status.sh", run.relative_to(on_slurm)], cwd=on_slurm,
                            capture_output=True, text=True, check=True).stdout
    logs = re.findall(r"SLURM log: (\S+)", status)
    assert len(logs) == 2 and all((on_slurm / path).is_file() for path in logs), status
    state = subprocess.run(["squeue", "-h", "-t", "all", "-j", first[0], "-o", "%T"], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert state == "COMPLETED", state
    assert (on_slurm / TABLE2).read_bytes() == (local / TABLE2).read_bytes()


@pytest.mark.slurm
def test_a_refused_submission_fails_at_once_with_slurms_message(runs):
    """A training asking for more memory than the node has: sbatch refuses it, and a retry would be refused the same
    way, so the head stops after one submission with SLURM's own message instead of submitting it three times."""
    _, on_slurm, _ = runs
    target = f"{RUNS}/market1501/baseline2-lr_0.5/seed0/metrics.json"  # one training, not made yet
    too_big = ["mem_mb=100000000" if arg == "mem_mb=2000" else arg for arg in ON_SLURM]  # 100 TB
    done = subprocess.run([SNAKEMAKE, *too_big, "--", target],
                          cwd=on_slurm, env=workflow_env(on_slurm.parent / "data"), capture_output=True, text=True,
                          timeout=300)
    printed = done.stdout + done.stderr
    assert done.returncode != 0, printed[-3000:]
    assert printed.count("SLURM sbatch failed") == 1 and "Trying to restart" not in printed, printed[-5000:]
    assert "SLURM refused the job (not retried" in printed and "sbatch: error:" in printed, printed[-5000:]
    assert not (on_slurm / target).exists()


def slurm_head(tmp_path) -> dict:
    """The functions of workflow/rules/slurm_head.smk (plain Python), without patching the installed plugin."""
    source = (REPO / "workflow/rules/slurm_head.smk").read_text().replace("\nadjust_slurm_plugin()\n", "\n")
    namespace: dict = {}
    exec(compile(source, "slurm_head.smk", "exec"), namespace)
    namespace["SUBMIT_RETRY_SECONDS"] = 0
    return namespace


def test_the_head_keeps_its_jobs_through_a_controller_outage(tmp_path, caplog):
    """A status query SLURM does not answer (controller down) reads as no news, so the plugin keeps every job active
    and asks again at its next check, instead of dropping them all; MinJobAge read before the outage is kept
    through it (no switch to sacct, which never answers without accounting)."""
    import asyncio

    head = slurm_head(tmp_path)
    answers = iter([(None, None), (None, None), ({"17": "COMPLETED"}, 0.01)])

    async def query(command, logger):
        return next(answers)

    patient, logger = head["patient_status_query"](query), logging.getLogger("test")
    with caplog.at_level(logging.WARNING, logger="test"):
        assert [asyncio.run(patient("squeue --name x", logger)) for _ in range(3)] == [
            ({}, 0.0), ({}, 0.0), ({"17": "COMPLETED"}, 0.01)]
    assert "SLURM did not answer the job status query (squeue)" in caplog.text and "SLURM answers again" in caplog.text
    ages = iter([300, None, None, 300])
    min_job_age = head["remembered_min_job_age"](lambda: next(ages))
    assert [min_job_age() for _ in range(4)] == [300, 300, 300, 300]


def test_a_refusal_is_final_and_a_late_timeout_with_every_output_written_counts_as_done(tmp_path):
    """sbatch's refusals are not retried (the job's attempts are used up), a submission that found no controller is
    made again; a TIMEOUT after all of a job's outputs were written is a success, one before that a failure."""
    from types import SimpleNamespace

    head = slurm_head(tmp_path)
    reported, submitted = [], []
    job = SimpleNamespace(attempt=1, restart_times=2, output=[str(tmp_path / "model.pt"), str(tmp_path / "m.json")])
    executor = SimpleNamespace(logger=logging.getLogger("test"), run_job=submitted.append,
                               report_job_success=lambda info: reported.append("success"))
    report = head["submission_errors"](lambda self, info, msg: reported.append(msg))
    failed = "SLURM sbatch failed. The error message was 'sbatch: error: Batch job submission failed: "
    report(executor, SimpleNamespace(job=job), failed + "Unable to contact slurm controller (connect failure)'")
    assert submitted == [job] and not reported and job.attempt == 1
    report(executor, SimpleNamespace(job=job), failed + "Requested node configuration is not available'")
    assert job.attempt == job.restart_times + 1  # Snakemake retries while restart_times > attempt - 1
    assert reported[-1].startswith("SLURM refused the job (not retried") and "Requested node" in reported[-1]
    late = head["late_timeouts"](lambda self, info, msg=None, **kwargs: reported.append(msg))
    timeout = "SLURM-job '5' failed, SLURM status is: 'TIMEOUT'. Detailed failure reason unavailable"
    info = SimpleNamespace(job=job, external_jobid="5")
    (tmp_path / "model.pt").touch()
    late(executor, info, timeout)  # metrics.json missing: the work was cut short
    assert reported[-1] == timeout
    (tmp_path / "m.json").touch()
    late(executor, info, timeout)
    assert reported[-1] == "success"


def test_the_old_slurm_settings_path_stops_with_one_line_naming_the_new_one(tmp_path):
    """`--workflow-profile workflow/profiles/slurm` (before issue 21) runs nothing and names workflow/slurm."""
    clone = workflow_copy(tmp_path / "clone")
    done = subprocess.run([SNAKEMAKE, "-n", "--workflow-profile", "workflow/profiles/slurm"], cwd=clone,
                          env=workflow_env(tmp_path / "data"), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "Job stats" not in done.stdout + done.stderr
    assert ("workflow/profiles/slurm moved to workflow/slurm: pass --workflow-profile workflow/slurm"
            in done.stdout + done.stderr)
