"""``aea plan``: the trainings a target needs (from the workflow's own dry run), counted by hand, and the hours
projected from the step times in benchmark CSVs."""

from __future__ import annotations

from pathlib import Path

import pytest

from aea.benchmarks import write_rows
from aea.config import load_profile, resolve
from aea.plan import (
    count_training,
    dry_run_commands,
    measured_step_times,
    parse_train_command,
    plan,
    published_step_times,
    target_rule,
    trainings_of,
)

REPO = Path(__file__).resolve().parent.parent
PAPER = load_profile("paper")


def cfg(method: str, dataset: str = "market1501", profile: str = "paper", **overrides):
    p = load_profile(profile)
    return resolve(p, dataset, method, p.canonical(dataset, overrides), 0)


@pytest.mark.slow
def test_the_tiny_table2_is_counted_as_by_hand(tmp_path):
    """tiny: Market-1501 and CUHK03 detected, seed 0, 2 epochs (1 warm-up) of min(16 ids // P=4, 2) = 2 steps.
    AEA trains both networks (2 warm-up one-network steps + 2 joint steps) and writes Baseline 1 from its basic
    network; Baseline 2 the same steps; Baselines 3/4 and the control (two networks, no erasing) take Baseline 1's
    basic network and train the complementary one after the warm-up (2 one-network steps)."""
    commands = dry_run_commands("table2", "tiny", snakefile=REPO / "Snakefile", directory=tmp_path, everything=True)
    trainings = trainings_of(commands)
    got = sorted((t.cfg.method, t.cfg.dataset, t.epochs, t.one_network_steps, t.two_network_steps,
                  t.writes_baseline1, t.read_off) for t in trainings)
    expected = sorted([(m, d, e, one, two, m == "aea", False)
                       for d in ("market1501", "cuhk03-detected")
                       for m, e, one, two in (("aea", 2, 2, 2), ("baseline2", 2, 2, 2), ("baseline3", 1, 2, 0),
                                              ("baseline4", 1, 2, 0), ("noerase", 1, 2, 0))])
    assert got == expected
    assert sum(t.iterations for t in trainings) == 28 and sum(t.epochs for t in trainings) == 14
    report = plan(trainings, tmp_path / "no-benchmarks")
    assert "total                          10       10       14          28" in report  # runs, trained, epochs, iters
    assert "8 two-network steps + 20 one-network steps" in report
    assert "no step time measured at this shape" in report
    # without --all the finished runs are left out: none here, so the same trainings
    assert len(trainings_of(dry_run_commands("table2", "tiny", snakefile=REPO / "Snakefile", directory=tmp_path))) == 10


def test_each_method_trains_what_it_trains():
    aea = count_training(cfg("aea"), PAPER)
    assert (aea.iters_per_epoch, aea.epochs) == (751 // 8, 100)  # one P x K batch per 8 identities
    assert (aea.one_network_steps, aea.two_network_steps) == (10 * 93, 90 * 93)  # warm-up: basic network alone
    b3 = count_training(cfg("baseline3"), PAPER)
    assert (b3.epochs, b3.one_network_steps, b3.two_network_steps) == (90, 90 * 93, 0)  # complementary only
    b1 = count_training(cfg("baseline1"), PAPER)
    assert (b1.one_network_steps, b1.two_network_steps) == (100 * 93, 0)
    assert count_training(cfg("baseline1"), PAPER, read_off=True).iterations == 0
    joint = count_training(cfg("baseline3", triplet_mode="joint"), PAPER)  # no shared basic network: both trained
    assert (joint.one_network_steps, joint.two_network_steps) == (10 * 93, 90 * 93)
    assert count_training(cfg("aea", "cuhk03-labeled"), PAPER).iters_per_epoch == 767 // 8
    mech = count_training(cfg("aea", profile="mechanism"), load_profile("mechanism"))
    assert (mech.iters_per_epoch, mech.epochs) == (64 // 8, 12)
    tiny = count_training(cfg("aea", profile="tiny"), load_profile("tiny"))
    assert tiny.iters_per_epoch == 2  # max_iters_per_epoch


def test_workflow_command_lines_are_read_as_aea_train_reads_them():
    line = ("aea train --profile paper --dataset dukemtmcreid --seed 2 --evaluate --replace-changed --out "
            "results/runs/paper/dukemtmcreid/aea-erase_ratio_25/seed2 --threads 1 --wait-lock 600 --gpus 1 "
            "--method aea erase_ratio=25.0 > results/x/train.log 2>&1 || (tail -n 1 results/x/train.log >&2; exit 1)")
    t, = parse_train_command(line)
    assert (t.cfg.dataset, t.cfg.method, t.cfg.seed, t.cfg.erase_ratio, t.read_off) == (
        "dukemtmcreid", "aea", 2, 25.0, False)
    b1, = parse_train_command("aea train --profile paper --dataset market1501 --seed 0 --evaluate --out r/b1 "
                             "--threads 1 --method baseline1 alpha2=0.5 --basic-of r/aea-alpha2_0.5/seed0 > log")
    assert b1.read_off and b1.iterations == 0 and b1.cfg.alpha2 == 0.5
    both, = parse_train_command("aea train --profile paper --dataset market1501 --seed 1 --out r/aea "
                               "--write-baseline1 r/baseline1/seed1 --threads 1 --method aea > log && cp a b")
    assert both.writes_baseline1 and not both.read_off
    mech, = parse_train_command("AEA_DATA=data/mechanism/redundant-p0-g1 aea train --profile mechanism --dataset "
                               "market1501 --method noerase --seed 3 --evaluate --out r --threads 1 "
                               "data_root=data/mechanism/redundant-p0-g1  > log 2>&1")
    assert (mech.cfg.profile, mech.cfg.method, mech.cfg.seed) == ("mechanism", "noerase", 3)
    assert parse_train_command("aea data check --dataset market1501 --root data --json x.json") == []
    grouped = parse_train_command("aea train --profile smoke --dataset market1501 --seed 0,1,2 --out r/seed{seed} "
                                  "--method baseline3 --baseline1 r/b1/seed{seed} > log")
    smoke = resolve(load_profile("smoke"), "market1501", "baseline3", {}, 0)  # complementary only: no warm-up
    assert [(t.cfg.seed, t.cfg.method, t.epochs) for t in grouped] == [
        (s, "baseline3", smoke.epochs - smoke.warmup_epochs) for s in (0, 1, 2)]


def test_targets_name_the_workflows_rules():
    assert target_rule("all") == target_rule("results/all") == "all_tables"
    assert target_rule("table2") == target_rule("results/table2.csv") == "table_table2"
    assert target_rule("mechanism") == "mechanism_table"
    assert target_rule("results/runs/smoke/market1501/aea/seed0/metrics.json").endswith("metrics.json")


def test_hours_come_from_the_latest_step_times_of_each_device(tmp_path):
    shape = dict(profile="paper", arch="resnet50", height=256, width=128, batch=32, precision="fp32")
    tags = dict(device="cpu-test", device_name="Test CPU", kind="cpu", threads="4", torch="2.x", form="full")
    old, new = dict(tags, date="2026-01-01T00:00:00Z"), dict(tags, date="2026-02-01T00:00:00Z")
    write_rows([dict(section="train", name="step seconds", value=99.0, unit="s", method=m, **shape)
                for m in ("aea", "baseline1")], old, tmp_path / "cpu-test" / "a.csv")
    write_rows([dict(section="train", name="step seconds", value=v, unit="s", method=m, **shape)
                for m, v in (("aea", 20.0), ("baseline1", 8.0), ("aea erase_backend=reference", 1.0))],
               new, tmp_path / "cpu-test" / "b.csv")
    times = measured_step_times(("resnet50", "256", "128", "32"), tmp_path)
    assert [(t.device, t.two, t.one, t.core_hours_factor) for t in times] == [("cpu-test", 20.0, 8.0, 4)]
    assert "2026-02-01" in times[0].label and times[0].sources.endswith("b.csv")
    aea = count_training(cfg("aea"), PAPER)  # 90 * 93 two-network + 10 * 93 one-network steps
    hours = (90 * 93 * 20.0 + 10 * 93 * 8.0) / 3600
    report = plan([aea], tmp_path)
    assert f"cpu-test: {hours:,.0f} CPU hours = {hours * 4:,.0f} core-hours" in report
    estimate = published_step_times(aea.cfg)
    assert estimate is not None and "ESTIMATE" in estimate.label and "ESTIMATE" in report
    assert estimate.two == pytest.approx(2 * estimate.one)
    assert published_step_times(cfg("aea", profile="smoke")) is None  # only the paper's network


def test_a_profile_file_is_counted_as_its_own_not_by_the_name_it_gives_itself(tmp_path):
    """`aea plan ... --profile my-seeds.yaml`: the runs of a profile file whose ``profile:`` name is no shipped
    profile are counted with the file's data (this once looked the name up among the shipped ones and failed)."""
    own = tmp_path / "my-seeds.yaml"
    own.write_text("base: smoke\nprofile: my-seeds\nseeds: [0, 1]\n")
    commands = dry_run_commands("table2", str(own), snakefile=REPO / "Snakefile", directory=tmp_path)
    trainings = trainings_of(commands)
    assert trainings and {t.cfg.profile for t in trainings} == {"my-seeds"}
    assert {t.cfg.seed for t in trainings} == {0, 1}
    smoke = count_training(resolve(load_profile("smoke"), "market1501", "aea", {}, 0), load_profile("smoke"))
    assert {t.iters_per_epoch for t in trainings if t.cfg.dataset == "market1501"} == {smoke.iters_per_epoch}
