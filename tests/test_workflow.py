"""The real Snakemake workflow, end to end, on the tiny profile (every table of the paper).

It runs from a copy of the workflow under a folder whose name has a space and non-ASCII characters, with the
data root ($AEA_DATA) under such a folder too, as a user's clone could be.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from aea import tables as T
from aea.config import load_profile, resolve
from aea.errors import AEAError
from aea.machine import machine_text

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
TINY = load_profile("tiny")
OUT = "results/profiles/tiny"  # a profile other than the default one writes its tables here
RUNS = "results/runs/tiny"
TABLE2_METHODS = ("aea", "baseline1", "baseline2", "baseline3", "baseline4", "noerase")  # the last: the control


def snakemake(clone: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AEA_DATA"}
    env["AEA_DATA"] = str(clone.parent / "data dir ü")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the `aea` of this install
    return subprocess.run([SNAKEMAKE, "--cores", "2", *args], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=timeout)


def workflow_copy(clone: Path) -> Path:
    """The workflow (Snakefile, workflow/, the paper's values) copied to ``clone``, nothing run."""
    (clone / "results").mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", clone)
    shutil.copytree(REPO / "workflow", clone / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "results/paper", clone / "results/paper")
    return clone


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """`snakemake --config profile=tiny` (default target `all`) in a copy of the workflow under `my clone ü/`."""
    clone = workflow_copy(tmp_path_factory.mktemp("workflow") / "my clone ü")
    done = snakemake(clone, "--quiet", "rules", "--config", "profile=tiny", "train_threads=1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return clone


def metrics_of(clone: Path, dataset: str, run: str, seed: int = 0) -> dict:
    return json.loads((clone / RUNS / dataset / run / f"seed{seed}/metrics.json").read_text())


def mean_of(clone: Path, dataset: str, run: str, field: str) -> float:
    """A table cell by hand: the metric in % averaged over the profile's seeds."""
    return sum(100 * metrics_of(clone, dataset, run, seed)[field] for seed in TINY.seeds) / len(TINY.seeds)


def model_times(clone: Path, dataset: str) -> dict:
    return {(m, s): (clone / RUNS / dataset / m / f"seed{s}/model.pt").stat().st_mtime_ns
            for m in TABLE2_METHODS for s in TINY.seeds}


def test_every_table_and_figure_is_written(clone):
    listed = (clone / OUT / "all").read_text().split("\n")
    for name in T.TABLES:
        files = [str(path) for path in T.table_files(name, OUT)]
        assert len(files) >= 5 and all(path in listed and (clone / path).is_file() for path in files)
        assert "<h2>Every cell" in (clone / OUT / f"{name}.html").read_text()
    assert (clone / OUT / "fig6.png").stat().st_size > 1000 and (clone / OUT / "fig7.png").is_file()
    for dataset in TINY.datasets:
        assert (clone / OUT / "attention" / f"{dataset}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((clone / "results").glob("*.csv")), "a non-default profile wrote into the default's place"


def test_the_mechanism_experiment_is_part_of_all(clone):
    """results/all builds the mechanism table on its tiny profile: every prediction and control decided over the
    2 units (generator seeds 0 and 1 x one training seed), from runs whose Baseline 1 is AEA's basic network."""
    listed = (clone / OUT / "all").read_text().split("\n")
    assert all(f"{OUT}/mechanism.{ext}" in listed for ext in ("csv", "md", "png", "provenance.json"))
    table = pd.read_csv(clone / OUT / "mechanism.csv")
    assert list(table.id) == ["P1a", "P1b", "P2a", "P2b", "P3", "P4", "P5", "K1", "K2", "K3"] + list(table.id[10:])
    decided = table[table.id != "K2"]
    assert (decided.n_units == 2).all() and decided.verdict.isin(["holds", "fails", "inconclusive"]).all()
    runs = clone / "results/runs/mechanism-tiny"
    for gen in (0, 1):
        b1 = torch.load(runs / f"redundant-g{gen}/baseline1/seed0/model.pt", weights_only=False)
        assert b1["basic_from"].endswith(f"redundant-g{gen}/aea/seed0") and b1["train_seconds"] == 0.0
        assert (runs / f"redundant-g{gen}/noerase/seed0/metrics-p0.4.json").is_file()


def test_data_went_to_the_data_root_with_a_space(clone):
    data = clone.parent / "data dir ü"
    assert {p.name for p in (data / ".aea").glob("*.done")} == {"market1501.tiny.done", "cuhk03-labeled.tiny.done"}
    assert not (clone / "data").exists()


def test_table2_cells_are_the_runs_metrics(clone):
    table = T.read_table(clone / OUT / "table2.csv")
    assert len(table) == 6 * len(TINY.datasets) * 3 and set(table.profile) == {"tiny"}
    assert set(table.n_seeds) == {len(TINY.seeds)}
    for row in table.itertuples():
        m = metrics_of(clone, row.dataset, row.method)
        field = {"rank1": "rank1", "mAP": "map_official", "mAP_noninterp": "map_noninterp"}[row.metric]
        assert row.mean == pytest.approx(mean_of(clone, row.dataset, row.method, field), abs=1e-9)
        one_network = row.method in ("baseline1", "baseline2")
        assert m["profile"] == "tiny" and m["feature_dim"] == (2560 if one_network else 5120)
        assert m["machine"]["threads"] == 1 and m["machine"]["cpu_capability"] and m["machine"]["gpu"] == ""
    diff_md = (clone / OUT / "table2.diff.md").read_text()
    assert f"- Machine of the runs: {machine_text(m['machine'])}." in diff_md  # one machine, 1 thread per job


def test_claims_are_paired_differences_of_the_runs(clone):
    """A claim's comparison is the mean over seeds of per-query differences: the two cells' means differ by it."""
    claims = pd.read_csv(clone / OUT / "table2.claims.csv")
    row = claims[(claims.winner == "AEA") & (claims.loser == "Baseline 1") & (claims.dataset == "market1501")
                 & (claims.metric == "mAP")].iloc[0]
    expected = mean_of(clone, "market1501", "aea", "map_official") - mean_of(clone, "market1501", "baseline1",
                                                                            "map_official")
    assert row["diff"] == pytest.approx(expected, abs=1e-9) and row.n_seeds == len(TINY.seeds)
    assert len(TINY.seeds) == 1 and row.status == "inconclusive"  # one seed: no interval, never decided
    assert pd.isna(row.low) and pd.isna(row.high) and pd.isna(row.seeds_needed)
    assert set(claims.verdict) <= {"holds", "fails", "inconclusive", "not evaluable"}


@pytest.mark.parametrize("name", ["table2", "table6"])
def test_the_ensemble_control_is_a_row_and_a_claim_of_the_harness(clone, name):
    """Two networks without erasing (its basic network Baseline 1's): a row of Tables 2 and 6 marked "not in the
    paper", and the harness's claim "AEA beats two networks without erasing", decided from the runs like the paper's."""
    diff = pd.read_csv(clone / OUT / f"{name}.diff.csv")
    control = diff[diff.method == "noerase"]
    assert len(control) == 2 * len(TINY.datasets) and set(control.within_spread) == {"not in the paper"}
    assert control.ours.notna().all() and control.paper.isna().all()
    run = torch.load(clone / RUNS / "market1501/noerase/seed0/model.pt", weights_only=False)
    assert run["basic_from"].endswith("market1501/baseline1/seed0")
    claims = pd.read_csv(clone / OUT / f"{name}.claims.csv")
    ours = claims[claims.claimed_by == "harness"]
    assert set(ours.claim) == {"AEA beats two networks without erasing on every dataset, in rank-1 and in mAP"}
    row = ours[(ours.dataset == "market1501") & (ours.metric == "mAP")].iloc[0]
    assert row["diff"] == pytest.approx(mean_of(clone, "market1501", "aea", "map_official")
                                        - mean_of(clone, "market1501", "noerase", "map_official"), abs=1e-9)
    assert set(claims[claims.claimed_by == "paper"].claim) and "not in the paper" in (
        clone / OUT / f"{name}.diff.md").read_text()


def test_interpretations_run_each_open_choice_both_ways(clone):
    """The joint-triplet AEA run exists beside the default one, and the table's effect row is their paired
    difference; the test-feature reading comes from the AEA runs' own alternative evaluation."""
    table = pd.read_csv(clone / OUT / "interpretations.csv")
    assert set(table.key) == {"triplet_mode", "warmup_epochs", "peer_form", "test_feature_norm"}
    assert set(table.dataset) == set(TINY.datasets)
    effect = table[(table.key == "triplet_mode") & (table.comparison == "AEA: B - A") & (table.metric == "mAP")
                   & (table.dataset == "market1501")].iloc[0]
    expected = mean_of(clone, "market1501", "aea-triplet_mode_joint", "map_official") - mean_of(
        clone, "market1501", "aea", "map_official")
    assert effect["diff"] == pytest.approx(expected, abs=1e-9) and effect.paper_profile == "triplet_mode=per_network"
    one_network = metrics_of(clone, "market1501", "reda-peer_form_one_network")
    assert one_network["feature_dim"] == 2560 and one_network["config"]["peer_form"] == "one_network"
    assert "test_feature_norm=concat" in metrics_of(clone, "market1501", "aea")["alternatives"]
    # the control (two networks, no erasing) has the same 5,120-d feature: re-read both ways, no training
    norm = table[table.key == "test_feature_norm"]
    assert {"Two networks, no erasing: B - A", "AEA - Two networks, no erasing"} <= set(norm.comparison)
    assert "test_feature_norm=concat" in metrics_of(clone, "market1501", "noerase")["alternatives"]
    assert "## triplet: one per network vs one over both networks" in (clone / OUT / "interpretations.diff.md"
                                                                      ).read_text()


def test_sweep_tables_use_the_default_run_for_the_default_point(clone):
    fig6 = T.read_table(clone / OUT / "fig6.csv")
    market = fig6[(fig6.dataset == "market1501") & (fig6.metric == "rank1")]
    assert sorted(market.erase_ratio) == sorted(float(v) for v in TINY.sweeps["erase_ratio"])
    default = market[market.erase_ratio == 10.0]
    assert default["run_name"].item() == "aea"  # R = 10 is Market's default: the AEA run, not a retraining
    assert default["mean"].item() == pytest.approx(mean_of(clone, "market1501", "aea", "rank1"))
    r20 = metrics_of(clone, "market1501", "aea-erase_ratio_20")
    assert r20["config"]["erase_ratio"] == 20.0 and r20["overrides"] == {"erase_ratio": 20.0}


def test_diff_reports_paper_values_and_claims(clone):
    diff = pd.read_csv(clone / OUT / "table2.diff.csv")
    aea_market = diff[(diff.method == "aea") & (diff.dataset == "market1501") & (diff.metric == "rank1")]
    assert aea_market["paper"].item() == 95.9
    assert aea_market["delta"].item() == pytest.approx(aea_market["ours"].item() - 95.9)
    md = (clone / OUT / "table2.diff.md").read_text()
    assert "AEA beats Baselines 1-4" in md and "not expected to match" in md
    provenance = json.loads((clone / OUT / "table2.provenance.json").read_text())
    assert provenance["n_runs"] == len(TABLE2_METHODS) * len(TINY.datasets) * len(TINY.seeds)


def test_table_page_shows_the_diff_claims_figure_and_cells(clone):
    page = (clone / OUT / "fig6.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    claims = pd.read_csv(clone / OUT / "fig6.claims.csv")
    assert len(claims) and all(c in text and v in text for c, v in zip(claims.claim, claims.verdict))
    md_rows = [line for line in (clone / OUT / "fig6.diff.md").read_text().splitlines()
               if line.startswith("|") and not re.fullmatch(r"[|\s:-]+", line)]
    cells = pd.read_csv(clone / OUT / "fig6.csv")
    assert page.count("<tr") == len(md_rows) + 1 + len(cells)  # every row of the diff, the CSV's header and cells
    assert page.count('<img alt="fig6" src="data:image/png;base64,') == 1


def test_baseline4_and_aos_were_made_from_the_baseline1_run(clone):
    for dataset in TINY.datasets:
        for method in ("baseline4", "aos"):
            assert all((clone / RUNS / dataset / method / f"seed{s}/static_masks.npz").is_file() for s in TINY.seeds)


def test_nothing_changed_means_nothing_reruns(clone):
    dry = snakemake(clone, "-n", "--config", "profile=tiny", timeout=120)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr


@pytest.mark.parametrize("profile, seed_arg, out", [
    ("smoke", "0,1,2,3,4,5,6", "'results/runs/smoke/{dataset}/{run}/seed{{seed}}'"),
    ("paper", "{seed}", "results/runs/paper/{dataset}/{run}/seed{seed}"),
])
def test_a_job_trains_every_seed_of_a_run_where_the_profile_groups_them(tmp_path, profile, seed_arg, out):
    """smoke (group_seeds: true): one job per run trains all 7 seeds in turn, every run path with {seed}, the log in
    the run's folder; paper (false): one job per seed. The same runs either way (tests/test_train.py)."""
    target = "results/table2.csv" if profile == "smoke" else "results/profiles/paper/table2.csv"
    dry = snakemake(workflow_copy(tmp_path / "clone"), "-n", "-p", "--config", f"profile={profile}", "--", target,
                    timeout=120)
    assert dry.returncode == 0, dry.stderr[-3000:]
    seeds = load_profile(profile).seeds
    commands = [c.removeprefix("Shell command: ") for c in dry.stdout.splitlines() if "command: aea train" in c]
    runs_per_dataset = len(TABLE2_METHODS) - 1  # Baseline 1 is written by AEA's job
    assert len(commands) == 4 * runs_per_dataset * (1 if profile == "smoke" else len(seeds))
    b4 = [c for c in commands if "--method baseline4" in c and "--dataset market1501" in c]
    assert len(b4) == (1 if profile == "smoke" else len(seeds))
    b4.sort(key=lambda c: re.search(r"--seed (\S+)", c)[1])
    for seed, command in zip(seeds, b4):
        fill = {"dataset": "market1501", "seed": seed}
        assert f"--seed {seed_arg.format(**fill)} " in command
        assert f"--out {out.format(run='baseline4', **fill)} " in command
        assert f"--baseline1 {out.format(run='baseline1', **fill)} " in command
    if profile == "smoke":
        assert b4[0].endswith("> results/runs/smoke/market1501/baseline4/job.log 2>&1 || (tail -n 1 "
                              "results/runs/smoke/market1501/baseline4/job.log >&2; exit 1)")


@pytest.mark.parametrize("setting, message", [
    ("profil=tiny", "unknown workflow setting(s) profil; valid: profile, train_threads, gpus_per_run"),
    ("train_thread=2", "unknown workflow setting(s) train_thread; valid: profile, train_threads, gpus_per_run"),
    ("train_threads=two", "'two' is not of type 'integer'"),
    ("gpus_per_run=-1", "-1 is less than the minimum of 0"),
])
def test_workflow_settings_are_checked_before_anything_runs(clone, setting, message):
    done = snakemake(clone, "-n", "--config", setting, timeout=120)
    assert done.returncode == 1 and message in done.stderr + done.stdout
    assert "Job stats" not in done.stdout + done.stderr


def embedded_files(report: str) -> dict[str, bytes]:
    """The files a Snakemake HTML report embeds, by file name: base64 data URIs in its results JSON."""
    uris = re.findall(r"data:[\w/+.-]+;charset=[\w-]+;filename=([^;\"]+);base64,([A-Za-z0-9+/=]+)", report)
    return {name: base64.b64decode(data) for name, data in uris}


def test_report_holds_every_table_its_diff_page_and_figures(clone):
    done = snakemake(clone, "--report", "report.html", "--config", "profile=tiny", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    files = embedded_files((clone / "report.html").read_text())
    for name in T.TABLES:
        for suffix in (".csv", ".diff.md", ".html") + ((".png",) if T.get_spec(name).figure_param else ()):
            assert files[f"{name}{suffix}"] == (clone / OUT / f"{name}{suffix}").read_bytes(), f"{name}{suffix}"
    for dataset in TINY.datasets:
        assert files[f"{dataset}.png"] == (clone / OUT / "attention" / f"{dataset}.png").read_bytes()


def test_an_edited_profile_value_reruns_exactly_the_runs_it_changes(clone, tmp_path):
    """Kept last: it retrains the runs it changes. A copy of the tiny profile (same name) with CUHK03-detected's
    learning rate changed: its Table-2 runs rerun afresh, Market's are untouched, the table is rebuilt."""
    edited = tmp_path / "tiny-lr.yaml"
    lr = 2 * resolve(TINY, "cuhk03-detected", "aea", {}, 0).lr
    lr_changed = f"dataset_defaults:\n  cuhk03-detected: {{lr: {lr}}}\n"
    edited.write_text((REPO / "aea/profiles/tiny.yaml").read_text() + lr_changed)
    target = f"{OUT}/table2.csv"
    market_before = model_times(clone, "market1501")

    dry = snakemake(clone, "-n", "--config", f"profile={edited}", "--", target, timeout=120)
    assert dry.returncode == 0, dry.stderr[-3000:]
    outputs = " ".join(re.findall(r"^\s*output: (.*)$", dry.stdout, flags=re.M))  # AEA's job also writes Baseline 1
    planned = set(re.findall(r"results/runs/tiny/([\w-]+)/([\w.-]+)/seed(\d+)/model\.pt", outputs))
    assert planned == {("cuhk03-detected", m, str(s)) for m in TABLE2_METHODS for s in TINY.seeds}
    assert re.search(r"table_table2\s+1\b", dry.stdout) and "Params have changed" in dry.stdout

    done = snakemake(clone, "--quiet", "rules", "--config", f"profile={edited}", "--", target)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = T.read_table(clone / target)
    for row in table[table.metric == "rank1"].itertuples():
        edited_run = row.dataset == "cuhk03-detected"
        assert (metrics_of(clone, row.dataset, row.method)["config"]["lr"] == lr) == edited_run
        assert row.mean == pytest.approx(mean_of(clone, row.dataset, row.method, "rank1"), abs=1e-9)
        log = (clone / RUNS / row.dataset / row.method / "job.log").read_text()  # the job of all its seeds
        assert ("another config: deleting it to start afresh" in log) == edited_run
    assert model_times(clone, "market1501") == market_before


def test_replace_changed_empties_only_a_run_directory_of_another_config_or_data(tmp_path):
    from aea.cli import discard_changed_run
    from aea.io import write_json, write_yaml
    from aea.runs import DATA_FILE

    cfg = resolve(TINY, "market1501", "aea", {}, 0)
    run = tmp_path / "run"
    run.mkdir()
    kept = ["checkpoint.pt", "config.yaml", "train.log"]

    def fill():
        write_yaml(run / "config.yaml", cfg.to_dict())
        (run / "checkpoint.pt").write_bytes(b"state")
        (run / "train.log").write_text("the workflow's log, open while aea train runs")

    fill()
    discard_changed_run(cfg, "data-a", run)  # same config, data not recorded (an older run): a resume
    assert sorted(p.name for p in run.iterdir()) == kept
    write_json(run / DATA_FILE, {"signature": "data-a"})
    discard_changed_run(cfg, "data-a", run)  # same config, same data: a resume
    assert sorted(p.name for p in run.iterdir()) == sorted([*kept, DATA_FILE])
    discard_changed_run(cfg, "data-b", run)  # regenerated data
    assert [p.name for p in run.iterdir()] == ["train.log"]
    fill()
    discard_changed_run(resolve(TINY, "market1501", "aea", {"lr": 2 * cfg.lr}, 0), "data-a", run)
    assert [p.name for p in run.iterdir()] == ["train.log"]
    write_yaml(run / "config.yaml", {**cfg.to_dict(), "colour": "red"})  # written by another version of aea
    discard_changed_run(cfg, "data-a", run)
    assert [p.name for p in run.iterdir()] == ["train.log"]
    fill()
    (run / "sub").mkdir()  # anything aea did not write: the folder is refused untouched (tests/test_safety.py)
    with pytest.raises(AEAError, match="holds sub/, which aea did not write"):
        discard_changed_run(resolve(TINY, "market1501", "aea", {"lr": 2 * cfg.lr}, 0), "data-a", run)
    assert sorted(p.name for p in run.iterdir()) == sorted([*kept, "sub"])


def test_real_data_edited_in_place_reruns_its_check_and_so_its_runs(tmp_path):
    """On real (not generated) data the listing's signature is a param of the dataset's check, which every
    training of that dataset takes as input: a file rewritten in place reruns the check, nothing else does."""
    work, data = tmp_path / "my clone ü", tmp_path / "data dir ü"
    work.mkdir()
    made = subprocess.run([str(Path(sys.executable).parent / "aea"), "data", "make-synthetic", "--dataset",
                           "market1501", "--size", "tiny", "--root", str(data)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    profile = tmp_path / "real.yaml"
    profile.write_text("base: tiny\nprofile: real\nsynthetic: null\ndatasets: [market1501]\n"
                       "defaults: {check_counts: false}\n")  # generated counts are not the release's
    check = ["--snakefile", str(REPO / "Snakefile"), "--config", f"profile={profile}", "--",
             "results/runs/real/data/market1501.json"]
    assert snakemake(work, *check).returncode == 0
    assert "Nothing to be done" in snakemake(work, "-n", *check).stdout
    image = next(data.rglob("*.jpg"))
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))  # rewritten, same bytes
    dry = snakemake(work, "-n", *check)
    assert "rule check_dataset" in dry.stdout and "Params have changed" in dry.stdout
    assert snakemake(work, *check).returncode == 0
    assert "Nothing to be done" in snakemake(work, "-n", *check).stdout
