"""Faults a user or the machine can cause (issue 13): each is one `aea: error:` line naming the fix, exit status 2,
no traceback, and nothing bad left behind; or it is repaired on the next start (temp files, a damaged
checkpoint)."""

from __future__ import annotations

import errno
import fcntl
import io
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

import aea.runs as R
import aea.train as T
from aea.cli import main
from aea.config import load_profile, resolve, run_name
from aea.data.datasets import data_signature, load_dataset

sys.path.insert(0, str(Path(__file__).parent))
from test_tables import PAPER_DIR, metrics  # noqa: E402  (hand-made metrics.json of the table tests)

TINY = ["--dataset", "market1501", "--profile", "tiny"]  # no --threads: in-process it would stay set for later tests


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aea: error: ") and "Traceback" not in err[0], err
    return err[0]


def train_argv(out: Path, *extra: str, method: str = "baseline1") -> list[str]:
    return ["train", *TINY, "--method", method, "--out", str(out), *extra]


@pytest.fixture
def data_env(tiny_root, monkeypatch):
    monkeypatch.setenv("AEA_DATA", str(tiny_root))
    return tiny_root


@pytest.fixture(scope="module")
def finished_run(tiny_root, tmp_path_factory) -> Path:
    """A finished tiny Baseline-1 run (seed 0), trained through the CLI; copy it before damaging it."""
    out = tmp_path_factory.mktemp("runs") / "baseline1"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AEA_DATA", str(tiny_root))
        assert main(train_argv(out)) == 0
    return out


def copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns(R.LOCK_FILE)))


# ----------------------------------------------------------------------------- config values, before any work

@pytest.mark.parametrize("override, fragment", [
    ("lr=-1", "lr=-1.0 is out of range: it must be > 0"),
    ("lr=inf", "lr=inf is not a finite number"),
    ("alpha1=nan", "alpha1=nan is not a finite number"),
    ("alpha1=-1", "alpha1=-1.0 is out of range: it must be >= 0"),
    ("alpha2=-0.5", "alpha2=-0.5 is out of range"),
    ("device=tpu", "device='tpu'; choose auto, cpu, cuda or cuda:N"),
    ("checkpoint_every=0", "checkpoint_every=0 is out of range: it must be >= 1"),
    ("eval_batch_size=0", "eval_batch_size=0 is out of range: it must be >= 1"),
    ("erase_backend=foo", "erase_backend='foo'; choose one of auto, triton, reference"),
    ("max_iters_per_epoch=0", "max_iters_per_epoch=0 is out of range: it must be >= 1, or none"),
    ("optimizer=rmsprop", "choose sgd or adam"),
    ("erase_layer=conv7", "erase_layer='conv7'"),
    ("dropout=1", "dropout=1.0 is out of range: it must be in [0, 1)"),
    ("num_workers=-1", "num_workers=-1 is out of range"),
    ("height=8", "height=8 is out of range: it must be >= 16"),
    ("arch=resnet99", "arch='resnet99'; choose one of"),
    ("device=cuda", "no CUDA device is visible"),
])
def test_bad_config_value_is_refused_before_the_run_directory_exists(capsys, tmp_path, monkeypatch, override,
                                                                     fragment):
    if override == "device=cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so device=cuda is valid here")
    monkeypatch.setenv("AEA_DATA", str(tmp_path / "no-data-needed"))  # refused before the data is looked at
    message = one_line_error(capsys, train_argv(tmp_path / "run", override, method="aea"))
    assert fragment in message
    assert not (tmp_path / "run").exists()  # nothing written, so the corrected command is not refused


def test_triton_backend_without_cuda_is_refused_up_front(capsys, tmp_path, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("Triton runs on this machine's CUDA device")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # the test suite's CPU interpreter
    message = one_line_error(capsys, train_argv(tmp_path / "run", "erase_backend=triton", "device=cpu", method="aea"))
    assert "erase_backend=triton needs a CUDA device" in message and "erase_backend=reference" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("threads", ["-1", "0"])
def test_bad_thread_count(capsys, tmp_path, threads):
    message = one_line_error(capsys, ["train", "--dataset", "market1501", "--profile", "tiny", "--method", "aea",
                                      "--out", str(tmp_path / "run"), "--threads", threads])
    assert f"--threads {threads}: give a number of CPU threads >= 1" in message
    assert not (tmp_path / "run").exists()


def test_show_count_zero_and_query_out_of_range(capsys, tmp_path, finished_run, data_env):
    assert "--count 0: give the number of images to show, >= 1" in one_line_error(
        capsys, ["show", "attention", "--run", str(finished_run), "--count", "0"])
    message = one_line_error(capsys, ["show", "ranks", "--run", str(finished_run), "--query", "100000",
                                      "--out", str(tmp_path / "r.png")])
    assert "--query 100000: market1501 has queries 0.." in message and not (tmp_path / "r.png").exists()


# ----------------------------------------------------------------------------- profiles and run configs

@pytest.mark.parametrize("text, fragment", [
    ("defaults: {lr: 0.1\n", "is not valid YAML (expected ',' or '}', but got '<stream end>' at line 2"),
    ("defaults: 3\n", "`defaults` must be a mapping of key: value; fix the profile file"),
    ("defaults: {lr: [1, 2]}\n", "config key 'lr' needs a float, got [1, 2]"),
    ("seeds: abc\n", "fix the profile file"),
    ("datasets: 3\n", "fix the profile file"),
    ("dataset_defaults: {market1501: 3}\n", "fix the profile file"),
    ("sweeps: {lr: 3}\n", "fix the profile file"),
])
def test_malformed_profile_is_one_line(capsys, tmp_path, text, fragment):
    profile = tmp_path / "mine.yaml"
    profile.write_text(text)
    message = one_line_error(capsys, ["train", "--dataset", "market1501", "--method", "aea", "--profile",
                                      str(profile), "--out", str(tmp_path / "run")])
    assert fragment in message


@pytest.mark.parametrize("text, fragment", [
    ("", "is empty or not a mapping of config keys"),
    ("profile: tiny\ndataset: [market1501\n", "is not valid YAML"),
    ("lr: 0.1\n", "is incomplete"),
    ("- 1\n- 2\n", "is empty or not a mapping"),
])
def test_damaged_run_config_is_one_line(capsys, tmp_path, finished_run, data_env, text, fragment):
    run = copy_run(finished_run, tmp_path)
    (run / R.CONFIG_FILE).write_text(text)
    for argv in (["evaluate", "--run", str(run)], train_argv(run)):
        message = one_line_error(capsys, argv)
        assert fragment in message and f"delete {run} and train the run again" in message


# ----------------------------------------------------------------------------- checkpoint and model files

@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"garbage" * 100, lambda b: b""])
def test_damaged_checkpoint_is_set_aside_and_training_restarts(tiny_market, tmp_path, damage, caplog):
    cfg = resolve(load_profile("tiny"), "market1501", "baseline1", {}, 0)
    T.train(cfg, tiny_market, tmp_path / "straight")
    out = tmp_path / "damaged"
    T.train(cfg, tiny_market, out, stop_after_epoch=0)
    checkpoint = out / R.CHECKPOINT_FILE
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    T.train(cfg, tiny_market, out)
    assert (out / "checkpoint.pt.corrupt").is_file() and "set aside as" in caplog.text
    straight = torch.load(tmp_path / "straight" / R.MODEL_FILE, weights_only=False)["state_dict"]
    restarted = torch.load(out / R.MODEL_FILE, weights_only=False)["state_dict"]
    assert all(torch.equal(straight[k], restarted[k]) for k in straight)  # restarted from epoch 1, same model


@pytest.mark.parametrize("content", [b"", b"not a torch file", None])
def test_damaged_model_says_delete_it_and_retrain_rewrites_it_from_the_checkpoint(capsys, tmp_path, finished_run,
                                                                                 data_env, content):
    run = copy_run(finished_run, tmp_path)
    model = run / R.MODEL_FILE
    model.write_bytes(model.read_bytes()[:1000] if content is None else content)
    message = one_line_error(capsys, ["evaluate", "--run", str(run)])
    assert f"{model}" in message and "delete it and rerun the run's `aea train` command" in message
    log_before = (run / R.LOG_FILE).read_text()
    model.unlink()
    assert main(train_argv(run, "--evaluate")) == 0  # the final checkpoint holds the last epoch: no retraining
    assert (run / R.LOG_FILE).read_text() == log_before and (run / "metrics.json").is_file()


class FullDisk(io.FileIO):
    """A file whose writes fail as on a full disk once ``room`` bytes are written."""

    room = 4096

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_full_disk_while_checkpointing_is_one_line_and_leaves_no_temp_file(capsys, tmp_path, data_env, monkeypatch):
    monkeypatch.setattr(R, "open", lambda path, mode: FullDisk(path, mode), raising=False)
    out = tmp_path / "run"
    message = one_line_error(capsys, train_argv(out))
    assert f"{out / R.CHECKPOINT_FILE}: No space left on device; free disk space, then rerun the same command" \
        in message
    assert not list(out.glob(".*.tmp")) and not (out / R.CHECKPOINT_FILE).exists()


def test_read_only_out_dir_is_one_line(capsys, tmp_path, data_env, monkeypatch):
    """Root ignores permission bits, so the refusal of a read-only folder is simulated where files are created."""
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.is_relative_to(read_only) and self != read_only:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    message = one_line_error(capsys, train_argv(read_only / "run"))
    assert f"{read_only / 'run'}: Permission denied; fix its permissions or choose a writable --out" in message
    message = one_line_error(capsys, ["table", "table2", "--metrics", *table2_metrics(tmp_path / "runs"),
                                      "--out-dir", str(read_only / "results"), "--paper-dir", str(PAPER_DIR)])
    assert f"{read_only / 'results'}: Permission denied; fix its permissions or choose a writable --out / --out-dir" \
        in message


# ----------------------------------------------------------------------------- run directory: temp files, lock, data

def test_leftover_temp_files_are_removed_at_the_next_start(tmp_path, data_env):
    out = tmp_path / "run"
    out.mkdir()
    leftovers = [out / ".checkpoint.pt.k1ll3d.tmp", out / ".train_log.csv.x.tmp"]
    for path in leftovers:
        path.write_bytes(b"\0" * 1000)
    assert main(train_argv(out)) == 0
    assert not any(p.exists() for p in leftovers) and (out / R.MODEL_FILE).is_file()


def test_second_train_on_one_out_dir_is_refused_while_the_first_holds_it(capsys, tmp_path, data_env):
    out = tmp_path / "run"
    with R.claim_run_dir(out):  # as a running `aea train` holds it (flock: another open file description)
        message = one_line_error(capsys, train_argv(out))
        assert f"another `aea train` is writing {out}" in message and "another --out" in message
        assert not (out / R.CONFIG_FILE).exists()
    assert main(train_argv(out)) == 0  # released when the holder ends


def test_lock_is_released_when_the_holder_dies(tmp_path):
    """flock is dropped with the holder's file descriptor, so a killed run never blocks its directory."""
    out = tmp_path / "run"
    out.mkdir()
    handle = open(out / R.LOCK_FILE, "a")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.close()  # what the kernel does for a killed process
    with R.claim_run_dir(out):
        pass


def test_missing_data_root_names_options_that_exist(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AEA_DATA", str(tmp_path / "nowhere"))
    message = one_line_error(capsys, train_argv(tmp_path / "run"))
    assert "set AEA_DATA (or data_root=DIR for `aea train`, --data-root for `aea evaluate`, --root for `aea data`)" \
        in message
    assert "--data-root" not in message.replace("--data-root for `aea evaluate`", "")


def test_run_records_its_data_and_refuses_to_resume_on_regenerated_data(capsys, tmp_path, tiny_root, monkeypatch):
    root = Path(shutil.copytree(tiny_root, tmp_path / "data"))
    monkeypatch.setenv("AEA_DATA", str(root))
    split = load_dataset("market1501", root)
    assert split.signature == data_signature("market1501", root) and len(split.signature) == 16
    cfg = resolve(load_profile("tiny"), "market1501", "baseline1", {}, 0)
    out = tmp_path / "run"
    T.train(cfg, split, out, stop_after_epoch=0)
    assert json.loads((out / R.DATA_FILE).read_text())["signature"] == split.signature
    image = next((root / "Market-1501-v15.09.15" / "bounding_box_train").iterdir())
    image.write_bytes(image.read_bytes())  # rewritten: another mtime, as a regeneration gives
    assert data_signature("market1501", root) != split.signature
    message = one_line_error(capsys, train_argv(out))
    assert "was trained on other data" in message and "--replace-changed" in message
    assert main(train_argv(out, "--replace-changed", "--evaluate")) == 0  # starts afresh on the new data
    new = data_signature("market1501", root)
    assert json.loads((out / R.DATA_FILE).read_text())["signature"] == new
    assert json.loads((out / "metrics.json").read_text())["data_signature"] == new


# ----------------------------------------------------------------------------- --baseline1

def test_baseline1_must_be_a_baseline1_run_of_the_same_seed(capsys, tmp_path, finished_run, data_env):
    aea_run = tmp_path / "aea"
    assert main(train_argv(aea_run, "epochs=1", "warmup_epochs=0", method="aea")) == 0
    message = one_line_error(capsys, train_argv(tmp_path / "b4", "--baseline1", str(aea_run), method="baseline4"))
    assert (f"--baseline1 {aea_run} is a aea run that differs in epochs=1; pass the baseline1 run of market1501, "
            "seed 0, with epochs=2") in message
    message = one_line_error(capsys, train_argv(tmp_path / "aos", "--seed", "1", "--baseline1", str(finished_run),
                                                method="aos"))
    assert "is a baseline1 run that differs in seed=0; pass the baseline1 run of market1501, seed 1, with seed=1" \
        in message


def test_write_baseline1_writes_aeas_basic_network_as_the_baseline1_run(capsys, tmp_path, finished_run, data_env):
    """One process trains AEA and writes Baseline 1 from its basic network (the workflow's AEA job): the same
    weights as the Baseline-1 run trained on its own (finished_run: same profile, seed 0), evaluated too."""
    aea_run, b1 = tmp_path / "aea", tmp_path / "b1"
    assert main(train_argv(aea_run, "--evaluate", "--write-baseline1", str(b1), method="aea")) == 0
    written, trained = (torch.load(run / R.MODEL_FILE, weights_only=False) for run in (b1, finished_run))
    assert written["basic_from"] == str(aea_run) and written["config"] == trained["config"]
    assert all(torch.equal(written["state_dict"][k], v) for k, v in trained["state_dict"].items())
    assert json.loads((b1 / "metrics.json").read_text())["method"] == "baseline1"
    message = one_line_error(capsys, train_argv(tmp_path / "b3", "--write-baseline1", str(b1), method="baseline3"))
    assert "--write-baseline1: Baseline 1 is not the basic network of a baseline3 run" in message


# ----------------------------------------------------------------------------- aea compare on a damaged table

def table2_metrics(folder: Path) -> list[str]:
    """metrics.json files of every Table-2 run, hand-made (one seed)."""
    from aea import tables

    paths = []
    for r in tables.table_runs("table2"):
        path = folder / r.dataset / run_name(r.method, r.overrides) / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(metrics(r.method, r.dataset, 0, 0.5, 0.4, r.overrides)))
        paths.append(str(path))
    return paths


def test_compare_with_a_non_numeric_cell_in_our_table_is_one_line(capsys, tmp_path):
    out = tmp_path / "results"
    assert main(["table", "table2", "--metrics", *table2_metrics(tmp_path / "runs"), "--out-dir", str(out),
                 "--paper-dir", str(PAPER_DIR)]) == 0
    table = out / "table2.csv"
    lines = table.read_text().splitlines()
    column = lines[0].split(",").index("mean")
    cells = lines[1].split(",")
    cells[column] = "abc"
    table.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    message = one_line_error(capsys, ["compare", "table2", "--out-dir", str(out), "--paper-dir", str(PAPER_DIR)])
    assert str(table) in message and "abc" in message


def test_read_only_file_system_names_the_file_not_its_temporary(capsys, tmp_path, tiny_root, monkeypatch):
    import tempfile

    def mkstemp(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".counts.json.x1y2.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    target = tmp_path / "counts.json"
    message = one_line_error(capsys, ["data", "check", "--dataset", "market1501", "--root", str(tiny_root),
                                      "--json", str(target)])
    assert message == (f"aea: error: {target}: Read-only file system; the file system is read-only: "
                       "choose a writable --out / --out-dir")
