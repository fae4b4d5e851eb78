"""Security and data safety (issue 22): a received run folder runs no code, aea deletes nothing it did not write,
and no input is silently taken wrong. Each fault is one `aea: error:` line naming the fix, exit status 2, no
traceback, and nothing of the user's lost; or it is repaired at the next start."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import aea.runs as runs
import aea.tables.report
from aea import tables
from aea.cli import main
from aea.config import run_name
from aea.data.datasets import MARKET_DIR as MARKET
from aea.io import restore_file_set

sys.path.insert(0, str(Path(__file__).parent))
import test_reliability as R  # noqa: E402  (its helpers and fixtures)
from test_reliability import copy_run, one_line_error, train_argv  # noqa: E402
from test_tables import PAPER_DIR, metrics  # noqa: E402  (hand-made metrics.json of the table tests)

data_env, finished_run = R.data_env, R.finished_run  # the same fixtures here

REPO = Path(__file__).resolve().parent.parent


class Payload:
    """Unpickled by a full (not weights-only) load, it creates ``marker``: proof that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_payload(path: Path, marker: Path) -> None:
    """Rewrite the torch file ``path`` with its own content plus a payload, as a tampered shared run would be."""
    saved = torch.load(path, weights_only=True)
    torch.save({**saved, "note": Payload(marker)}, path)


# ----------------------------------------------------------------------------- torch files load weights only

@pytest.mark.parametrize("argv", [
    lambda run, tmp: ["evaluate", "--run", str(run)],
    lambda run, tmp: ["show", "attention", "--run", str(run), "--out", str(tmp / "a.png")],
    lambda run, tmp: train_argv(tmp / "b4", "--baseline1", str(run), method="baseline4"),
])
def test_payload_in_model_file_is_never_run(capsys, tmp_path, finished_run, data_env, argv):
    run = copy_run(finished_run, tmp_path)
    marker = tmp_path / "payload-ran"
    plant_payload(run / runs.MODEL_FILE, marker)
    message = one_line_error(capsys, argv(run, tmp_path))
    assert not marker.exists()
    assert f"{run / runs.MODEL_FILE} is not a run file of this project" in message
    assert "delete it and rerun the run's `aea train` command" in message


def test_payload_in_checkpoint_is_set_aside_unrun_and_training_restarts(tmp_path, data_env, caplog):
    out = tmp_path / "run"
    assert main(train_argv(out)) == 0
    (out / runs.MODEL_FILE).unlink()
    marker = tmp_path / "payload-ran"
    plant_payload(out / runs.CHECKPOINT_FILE, marker)
    assert main(train_argv(out)) == 0
    assert not marker.exists()
    assert (out / "checkpoint.pt.corrupt").is_file() and (out / runs.MODEL_FILE).is_file()
    assert "not a run file of this project" in caplog.text and "training restarts from epoch 1" in caplog.text


def test_payload_in_pretrained_file_is_never_run(capsys, tmp_path, data_env):
    weights = tmp_path / "weights.pth"
    marker = tmp_path / "payload-ran"
    torch.save({"conv1.weight": torch.zeros(1), "note": Payload(marker)}, weights)
    message = one_line_error(capsys, train_argv(tmp_path / "run", "--pretrained", str(weights), "base_width=64"))
    assert not marker.exists()
    assert f"{weights} is not a weights file" in message and "give a torchvision" in message


def test_real_run_files_load_weights_only(finished_run):
    for name in (runs.MODEL_FILE, runs.CHECKPOINT_FILE):
        assert isinstance(torch.load(finished_run / name, weights_only=True), dict)


# ----------------------------------------------------------------------------- only aea's files are deleted

def foreign_run_dir(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A folder with another program's config.yaml beside the user's files."""
    out = tmp_path / "project"
    (out / "src").mkdir(parents=True)
    (out / ".git").mkdir()
    files = {"config.yaml": b"name: my project\n", "NOTES.md": b"my notes\n", "src/main.py": b"print(1)\n",
             ".git/HEAD": b"ref: refs/heads/main\n"}
    for name, content in files.items():
        (out / name).write_bytes(content)
    return out, files


@pytest.mark.parametrize("flag", [[], ["--replace-changed"]])
def test_foreign_folder_is_refused_untouched_and_no_lock_is_left(capsys, tmp_path, data_env, flag):
    out, files = foreign_run_dir(tmp_path)
    message = one_line_error(capsys, train_argv(out, *flag))
    assert str(out) in message
    if flag:
        assert f"{out} holds .git/, NOTES.md, src/, which aea did not write" in message
        assert "nothing was deleted" in message
    else:
        assert f"{out / 'config.yaml'} has unknown keys ['name']" in message
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


def test_replace_changed_deletes_only_run_files(tmp_path, data_env):
    out = tmp_path / "run"
    assert main(train_argv(out, "epochs=1")) == 0
    (out / "job.log").write_text("the workflow's log of this job\n")
    assert main(train_argv(out, "--replace-changed", "--evaluate")) == 0  # another config: started afresh
    assert (out / "job.log").read_text() == "the workflow's log of this job\n"
    assert (out / "metrics.json").is_file() and not (out / runs.LOCK_FILE).exists()
    (out / "mine.txt").write_text("keep me\n")
    message_code = main(train_argv(out, "--replace-changed", "epochs=1"))
    assert message_code == 2 and (out / "mine.txt").read_text() == "keep me\n" and (out / runs.MODEL_FILE).is_file()


def test_only_temp_files_of_run_files_are_swept(tmp_path, data_env):
    out = tmp_path / "run"
    out.mkdir()
    ours, theirs = out / ".checkpoint.pt.k1ll3d.tmp", out / ".my-editor.swp.tmp"
    ours.write_bytes(b"\0")
    theirs.write_bytes(b"user's")
    with runs.claim_run_dir(out):
        assert (out / runs.LOCK_FILE).is_file()
    assert not ours.exists() and theirs.read_bytes() == b"user's" and not (out / runs.LOCK_FILE).exists()


# ----------------------------------------------------------------------------- YAML: a key given twice

def test_profile_with_a_key_given_twice_is_refused(capsys, tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("base: tiny\ndefaults:\n  epochs: 3\n  lr: 0.01\nseeds: [0]\ndefaults:\n  epochs: 2\n")
    message = one_line_error(capsys, train_argv(tmp_path / "run", "--profile", str(profile)))
    assert f"{profile}: key 'defaults' is given twice, at lines 2 and 6; keep one of them" in message
    assert not (tmp_path / "run").exists()


def test_nested_key_given_twice_in_a_run_config_is_refused(capsys, tmp_path, finished_run, data_env):
    run = copy_run(finished_run, tmp_path)
    config = run / runs.CONFIG_FILE
    config.write_text(config.read_text() + "lr: 0.5\n")
    message = one_line_error(capsys, ["evaluate", "--run", str(run)])
    assert f"{config}: key 'lr' is given twice, at lines" in message and "train the run again" in message


def test_workflow_config_with_a_key_given_twice_is_refused(tmp_path):
    configfile = tmp_path / "mine.yaml"
    configfile.write_text("profile: tiny\ntrain_threads: 1\nprofile: smoke\n")
    done = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--snakefile", str(REPO / "Snakefile"),
                           "--configfile", str(configfile)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert f"{configfile}: key 'profile' is given twice, at lines 1 and 3" in done.stdout + done.stderr


# ----------------------------------------------------------------------------- images: unusual modes, links, folders



def first_query(root: Path) -> Path:
    return sorted((root / MARKET / "query").glob("*.jpg"))[0]


def sixteen_bit(grey: np.ndarray) -> Image.Image:
    """A 16-bit grey image as another tool re-saves an 8-bit one: each value v becomes v * 257."""
    return Image.fromarray(grey.astype(np.uint16) * 257)


@pytest.mark.parametrize("mode", ["I;16", "P", "LA"])
def test_unusual_image_modes_load_as_their_8_bit_pixels(capsys, market_copy, mode):
    from aea.data.transforms import load_image

    path = first_query(market_copy)
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    grey = np.asarray(rgb.convert("L"))
    if mode == "I;16":
        saved, expected = sixteen_bit(grey), np.stack([grey] * 3, axis=-1)
    elif mode == "P":
        saved = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
        expected = np.asarray(saved.convert("RGB"))
    else:
        saved, expected = Image.fromarray(np.stack([grey, np.full_like(grey, 255)], axis=-1), "LA"), \
            np.stack([grey] * 3, axis=-1)
    saved.save(path, format="PNG")  # the same file name: the release's parser reads names, Pillow reads content
    with Image.open(path) as im:
        assert im.mode == mode
    assert main(["data", "check", "--dataset", "market1501", "--root", str(market_copy)]) == 0
    pixels = np.asarray(load_image(path))
    assert pixels.dtype == np.uint8 and np.array_equal(pixels, expected)
    assert len(np.unique(pixels)) > 10  # not the all-white image a plain convert("RGB") makes of 16-bit grey


def test_image_with_no_8_bit_reading_is_refused_by_data_check(capsys, market_copy):
    path = first_query(market_copy)
    Image.fromarray(np.full((128, 64), 0.5, np.float32)).save(path, format="TIFF")
    message = one_line_error(capsys, ["data", "check", "--dataset", "market1501", "--root", str(market_copy)])
    assert f"image {path} has pixel mode F (32-bit float pixels)" in message
    assert "save it as 8-bit RGB or greyscale" in message


def test_broken_symlink_in_place_of_an_image_is_one_line(capsys, tmp_path, market_copy, monkeypatch):
    path = first_query(market_copy)
    path.unlink()
    path.symlink_to(tmp_path / "gone.jpg")
    for argv in (["data", "check", "--dataset", "market1501", "--root", str(market_copy)],
                 ["train", "--dataset", "market1501", "--profile", "tiny", "--method", "baseline1",
                  "--out", str(tmp_path / "run"), f"data_root={market_copy}"]):
        monkeypatch.delenv("AEA_DATA", raising=False)
        message = one_line_error(capsys, argv)
        assert f"unreadable image {path} (FileNotFoundError: a broken symbolic link to {tmp_path / 'gone.jpg'})" \
            in message and "replace it with a good copy" in message
    profile = tmp_path / "real.yaml"
    profile.write_text("base: tiny\nprofile: real\nsynthetic: null\ndatasets: [market1501]\n"
                       f"defaults: {{check_counts: false, data_root: {market_copy}}}\n")
    dry = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--snakefile", str(REPO / "Snakefile"),
                          "--config", f"profile={profile}", "--", "results/runs/real/data/market1501.json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0 and "Traceback" not in dry.stdout + dry.stderr, dry.stderr[-2000:]


def test_unreadable_query_folder_says_so(capsys, market_copy, monkeypatch):
    """Root ignores permission bits, so the refusal to list the folder is simulated."""
    query = market_copy / MARKET / "query"
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == query:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    message = one_line_error(capsys, ["data", "check", "--dataset", "market1501", "--root", str(market_copy)])
    assert f"cannot list {query} (Permission denied)" in message and "fix their permissions" in message
    assert "writable --out" not in message


# ----------------------------------------------------------------------------- seeds and names that become paths

def snakemake_dry(cwd: Path, profile: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--snakefile", str(REPO / "Snakefile"),
                           *options, "--config", f"profile={profile}"], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("seed", ["4294967296", "18446744073709551616", "-1", "2147483648"])
def test_seed_outside_the_range_is_refused_before_anything_is_written(capsys, tmp_path, data_env, seed):
    out = tmp_path / "run"
    message = one_line_error(capsys, train_argv(out, "--seed", seed))
    assert f"--seed: seed {seed} is not an integer in 0 <= seed < 2**31" in message
    assert not out.exists()  # no config.yaml, data.json or lock left behind
    message = one_line_error(capsys, ["data", "make-synthetic", "--root", str(tmp_path / "data"), "--seed", seed])
    assert f"seed {seed} is not an integer" in message and not (tmp_path / "data").exists()


@pytest.mark.parametrize("seeds, fragment", [
    ("[0, 4294967296]", "seeds: seed 4294967296 is not an integer in 0 <= seed < 2**31"),
    ("[-1]", "seeds: seed -1 is not an integer in 0 <= seed < 2**31"),
    ("[0.5]", "seeds: seed 0.5 is not an integer"),
    ("[1, 1]", "seeds [1, 1] lists a seed twice"),
])
def test_profile_seeds_are_checked(capsys, tmp_path, seeds, fragment):
    profile = tmp_path / "mine.yaml"
    profile.write_text(f"base: tiny\nseeds: {seeds}\n")
    message = one_line_error(capsys, train_argv(tmp_path / "run", "--profile", str(profile)))
    assert f"{profile}: {fragment}" in message
    if seeds == "[-1]":  # and the workflow names it too, before any job
        dry = snakemake_dry(tmp_path, profile)
        assert dry.returncode == 1 and f"{profile}: {fragment}" in dry.stdout + dry.stderr


@pytest.mark.parametrize("name", ["../../../../escaped", "..", "a/b", "my profile"])
def test_profile_name_that_leaves_results_is_refused(capsys, tmp_path, name):
    work = tmp_path / "deep" / "er" / "work"
    work.mkdir(parents=True)
    profile = tmp_path / "mine.yaml"
    profile.write_text(f"base: tiny\nprofile: {name!r}\n")
    message = one_line_error(capsys, train_argv(tmp_path / "run", "--profile", str(profile)))
    assert f"{profile}: profile name {name!r} becomes a folder name" in message
    dry = snakemake_dry(work, profile, "--until", "check_dataset")
    assert dry.returncode == 1 and "becomes a folder name" in dry.stdout + dry.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "mine.yaml"]


def test_synthetic_size_that_would_leave_the_data_root_is_refused(capsys, tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("base: tiny\nsynthetic: ../../../escaped\n")
    message = one_line_error(capsys, train_argv(tmp_path / "run", "--profile", str(profile)))
    assert f"{profile}: synthetic size '../../../escaped' becomes a folder name" in message


def test_override_value_that_would_leave_the_runs_folder_is_refused():
    from aea.config import run_name
    from aea.errors import AEAError

    assert run_name("aea", {"erase_ratio": 15.0, "lr": 1e-5}) == "aea-erase_ratio_15-lr_1e-05"
    with pytest.raises(AEAError, match="run name 'aea-pretrained_../../w.pth' becomes a folder name"):
        run_name("aea", {"pretrained": "../../w.pth"})


# ----------------------------------------------------------------------------- memory

def test_memory_limit_at_torch_import_is_one_line(tmp_path, tiny_root):
    import resource

    def limit():  # 600 MB of address space: Python and aea's CLI start, torch's libraries cannot be mapped
        resource.setrlimit(resource.RLIMIT_AS, (600 * 2**20, 600 * 2**20))

    done = subprocess.run([str(Path(sys.executable).parent / "aea"), *train_argv(tmp_path / "run")],
                          env={**os.environ, "AEA_DATA": str(tiny_root)}, preexec_fn=limit, capture_output=True,
                          text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("aea: error: ")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == errors[0]
    assert errors[0].startswith("aea: error: `aea train` ran out of memory (a library could not be loaded")
    assert "cache_images=false" in errors[0] and "--threads" in errors[0]


def test_memory_error_in_evaluation_says_what_was_asked(capsys, finished_run, data_env, monkeypatch):
    import aea.evaluate

    monkeypatch.setattr(aea.evaluate, "evaluate_run", lambda *args, **kwargs: torch.empty(2**45))  # 128 TiB
    message = one_line_error(capsys, ["evaluate", "--run", str(finished_run), "--out", "/nonexistent/m.json"])
    assert "`aea evaluate` ran out of memory (an allocation of 131072.0 GiB failed)" in message
    assert "eval_batch_size" in message


@pytest.mark.parametrize("error, said", [
    (RuntimeError("DataLoader worker (pid 1234) is killed by signal: Killed. "),
     "DataLoader worker (pid 1234) was killed by SIGKILL, most often the kernel's out-of-memory killer"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total capacity)"),
     "an allocation of 2.00 GiB failed on the GPU"),
    (MemoryError(), "a MemoryError"),
    (OSError(12, "Cannot allocate memory"), "Cannot allocate memory"),
])
def test_other_memory_failures_are_named(error, said):
    from aea.cli import out_of_memory

    assert out_of_memory(error) == said
    assert out_of_memory(RuntimeError("size mismatch")) is None and out_of_memory(OSError(2, "gone")) is None


def test_image_cache_larger_than_memory_is_refused_up_front(capsys, tmp_path, data_env):
    out = tmp_path / "run"
    message = one_line_error(capsys, train_argv(out, "height=65536", "width=32768", "cache_images=true"))
    assert "cache_images=true would hold" in message and "training images at 65536x32768" in message
    assert "set cache_images=false" in message
    assert not (out / runs.CONFIG_FILE).exists()
    assert main(train_argv(out, "cache_images=false", "epochs=1", "warmup_epochs=0")) == 0  # the fix is taken


# ----------------------------------------------------------------------------- a table's files: old set or new set

def table2_metrics(folder: Path, rank1: float) -> list[str]:
    """metrics.json of every Table-2 run, hand-made (one seed), each run at ``rank1``."""
    paths = []
    for r in tables.table_runs("table2"):
        path = folder / r.dataset / run_name(r.method, r.overrides) / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics(r.method, r.dataset, 0, rank1, 0.4, r.overrides)))
        paths.append(str(path))
    return paths


def files_of(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


KILL_AFTER_TWO_FILES = """
import os, signal, sys
import aea.io as io
replace, done = io._FileSet.replace, []
def killed_after_two(self, tmp, path):
    replace(self, tmp, path)
    done.append(path)
    if len(done) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
io._FileSet.replace = killed_after_two
from aea.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_table_killed_between_its_files_leaves_the_old_set(tmp_path):
    out = tmp_path / "results"
    table = ["table", "table2", "--out-dir", str(out), "--paper-dir", str(PAPER_DIR), "--metrics"]
    assert main([*table, *table2_metrics(tmp_path / "old", 0.5)]) == 0
    old = files_of(out)
    assert {"table2.csv", "table2.claims.csv", "table2.diff.md"} <= set(old) and not list(out.glob(".*"))
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_TWO_FILES, *table,
                             *table2_metrics(tmp_path / "new", 0.9)], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9
    assert (out / ".table2.set.json").is_file()  # the journal marks the cut
    assert (out / "table2.csv").read_bytes() != old["table2.csv"]  # a mix on disk until the next start ...
    restore_file_set(out / ".table2.set.json", "table2")  # ... which every `aea table/compare table2` begins with
    assert files_of(out) == old and not list(out.glob(".*"))
    assert main([*table, *table2_metrics(tmp_path / "new", 0.9)]) == 0  # then the new set, whole
    new = files_of(out)
    assert set(new) == set(old) and all(new[k] != old[k] for k in ("table2.csv", "table2.diff.md"))
    assert not list(out.glob(".*"))


def test_table_error_midway_keeps_the_old_set(capsys, tmp_path, monkeypatch):
    out = tmp_path / "results"
    table = ["table", "table2", "--out-dir", str(out), "--paper-dir", str(PAPER_DIR), "--metrics"]
    assert main([*table, *table2_metrics(tmp_path / "old", 0.5)]) == 0
    old = files_of(out)

    def broken_diff(*args, **kwargs):
        raise OSError(28, "No space left on device", str(out / "table2.diff.csv"))

    monkeypatch.setattr(aea.tables.report, "write_diff", broken_diff)
    message = one_line_error(capsys, [*table, *table2_metrics(tmp_path / "new", 0.9)])
    assert "No space left on device" in message
    assert files_of(out) == old and not list(out.glob(".*"))


# ----------------------------------------------------------------------------- temp folders of killed writes

def test_killed_generations_temp_folder_is_swept_at_the_next_start(tmp_path):
    from aea.data.datasets import MARKET_DIR
    from aea.io import temp_dir_beside

    root = tmp_path / "data"
    root.mkdir()
    made = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from aea.io import "
                           "temp_dir_beside; t = temp_dir_beside(Path(sys.argv[1])); (t / 'half.jpg').touch(); "
                           "print(t)", str(root / MARKET_DIR)], capture_output=True, text=True, check=True)
    killed = Path(made.stdout.strip())  # its process has ended, as a killed `aea data make-synthetic` would
    live = temp_dir_beside(root / MARKET_DIR)  # this process's: a generation still running
    other_host = root / f".{MARKET_DIR}.another-host.1.abc_12"
    other_host.mkdir()
    assert killed.is_dir() and killed.name.startswith(f".{MARKET_DIR}.")
    assert main(["data", "make-synthetic", "--dataset", "market1501", "--size", "tiny", "--root", str(root)]) == 0
    assert not killed.exists() and live.is_dir() and other_host.is_dir()
    assert (root / MARKET_DIR / "aea_synthetic.json").is_file()


def test_killed_cuhk03_extractions_temp_files_are_swept(tmp_path):
    from aea.data.datasets import CUHK03_RELEASE_DIR, load_dataset
    from aea.data.synthetic import make_synthetic

    root = tmp_path / "data"
    make_synthetic("cuhk03", root, size="tiny", seed=0)
    load_dataset("cuhk03-labeled", root)
    images = root / CUHK03_RELEASE_DIR / "images_labeled"
    (images / ".aea_extracted.json").unlink()  # a killed extraction never wrote its stamp
    leftover, mine = images / ".1_001_1_01.png.k1ll3d.tmp", images / ".my-notes.tmp"
    leftover.write_bytes(b"\x89PNG half")
    mine.write_text("the user's")
    load_dataset("cuhk03-labeled", root)
    assert not leftover.exists() and mine.read_text() == "the user's"


# ----------------------------------------------------------------------------- workflow: a deleted metrics.json

def test_deleted_metrics_under_an_up_to_date_table_is_remade(tmp_path):
    """Snakemake never looks at the inputs of an up-to-date output again; the table's stamp input
    (workflow/rules/common.smk, runs_stamp) makes a deleted run's metrics.json and the table be remade. The DAG's
    outputs are made by hand and recorded with --touch (no training), then dry runs show what would run."""
    clone = tmp_path / "clone"
    (clone / "results").mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", clone)
    shutil.copytree(REPO / "workflow", clone / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "results/paper", clone / "results/paper")
    env = {**os.environ, "AEA_DATA": str(tmp_path / "data")}
    target = ["--config", "profile=tiny", "--", "results/profiles/tiny/table2.csv"]

    def snakemake(*args: str) -> str:
        done = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--cores", "1", *args], cwd=clone,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout + done.stderr

    summary = snakemake("--summary", *target).splitlines()
    outputs = [line.split("\t")[0] for line in summary[summary.index(next(s for s in summary if
                                                                           s.startswith("output_file"))) + 1:]]
    for i, path in enumerate(reversed(outputs)):  # listed from the target down: oldest first
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_text("{}")
        os.utime(clone / path, ns=(10**18 + i * 10**9,) * 2)
    snakemake("--touch", *target)
    assert "Nothing to be done" in snakemake("-n", *target)
    metrics = clone / "results/runs/tiny/market1501/baseline2/seed0/metrics.json"
    metrics.unlink()
    dry = snakemake("-n", *target)
    assert "Missing output files: results/runs/tiny/market1501/baseline2/seed0/metrics.json" in dry
    assert re.search(r"^rule table_table2:", dry, flags=re.M) and re.search(r"^rule train:", dry, flags=re.M)
    metrics.write_text("{}")  # as the run remade it
    snakemake("--touch", *target)
    assert "Nothing to be done" in snakemake("-n", *target)  # and then nothing reruns


def test_regenerating_data_keeps_what_aea_did_not_write(capsys, tmp_path):
    from aea.data.datasets import MARKET_DIR

    root = tmp_path / "data"
    make = ["data", "make-synthetic", "--dataset", "market1501", "--size", "tiny", "--root", str(root)]
    assert main(make) == 0
    notes = root / MARKET_DIR / "NOTES.md"
    notes.write_text("the user's notes\n")
    message = one_line_error(capsys, [*make, "--seed", "1"])  # other parameters: the old generation is replaced
    assert f"{root / MARKET_DIR} holds NOTES.md, which aea did not write; nothing was deleted" in message
    assert notes.read_text() == "the user's notes\n" and not [p for p in root.iterdir() if p.name.startswith(".")]
    notes.unlink()
    assert main([*make, "--seed", "1"]) == 0  # aea's own files (marker, split cache) are replaced as before
