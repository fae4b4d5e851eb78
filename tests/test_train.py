"""The training loop: resume equals an uninterrupted run, determinism, every method, divergence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from aea import runs as R
from aea import train as T
from aea.config import load_profile, resolve
from aea.errors import AEAError
from aea.evaluate import evaluate_run
from aea.io import read_json
from aea.methods import REGISTRY

TINY = {"warmup_epochs": 1, "max_iters_per_epoch": 1}


def tiny_config(method: str = "aea", **overrides):
    values = {"epochs": 3, "warmup_epochs": 1, "lr_decay_epoch": 2, "max_iters_per_epoch": 1, **overrides}
    return resolve(load_profile("tiny"), "market1501", method, values, seed=0)


def model_state(run_dir):
    return torch.load(run_dir / R.MODEL_FILE, weights_only=False)["state_dict"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def losses(run_dir):
    return pd.read_csv(run_dir / R.LOG_FILE).drop(columns=["seconds", "erase_seconds"])


def test_resume_after_stop_equals_uninterrupted(tiny_market, tmp_path):
    cfg = tiny_config()
    T.train(cfg, tiny_market, tmp_path / "straight")
    T.train(cfg, tiny_market, tmp_path / "resumed", stop_after_epoch=0)
    assert not (tmp_path / "resumed" / R.MODEL_FILE).exists()
    assert len(losses(tmp_path / "resumed")) == 1
    T.train(cfg, tiny_market, tmp_path / "resumed")
    assert_same_weights(model_state(tmp_path / "straight"), model_state(tmp_path / "resumed"))
    pd.testing.assert_frame_equal(losses(tmp_path / "straight"), losses(tmp_path / "resumed"))
    # the joint epochs really trained the complementary network on erased images
    log = losses(tmp_path / "straight")
    assert list(log.joint) == [0, 1, 1] and log.erased_fraction.iloc[1] == pytest.approx(0.10, abs=0.01)
    assert list(log.lr) == pytest.approx([cfg.lr, cfg.lr, cfg.lr * cfg.lr_gamma])  # step at lr_decay_epoch=2


def test_killed_process_resumes_to_the_same_model(tiny_root, tmp_path):
    """A real SIGKILL during training, then the same command again: the model equals an uninterrupted run."""
    def command(out):  # the reference runs the same command uninterrupted: same process set-up, same threads
        return [sys.executable, "-m", "aea.cli", "train", "--profile", "tiny", "--dataset", "market1501",
                "--method", "aea", "--out", str(out), "epochs=4", "warmup_epochs=1", "lr_decay_epoch=3",
                "max_iters_per_epoch=1"]
    env = {**os.environ, "AEA_DATA": str(tiny_root)}
    straight = subprocess.run(command(tmp_path / "straight"), env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "killed"
    cmd = command(out)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / R.CHECKPOINT_FILE).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / R.CHECKPOINT_FILE).exists() and not (out / R.MODEL_FILE).exists(), "kill came too late"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    assert_same_weights(model_state(tmp_path / "straight"), model_state(out))


def test_several_seeds_in_one_process_equal_a_process_per_seed(tiny_root, tmp_path):
    """`aea train --seed 0,1` (the workflow's seeds_per_job) trains and evaluates each seed exactly as its own
    process would: same weights bit for bit, same metrics, for AEA and the Baseline 1 it writes; then Baseline 4
    from those Baseline-1 runs, again both ways."""
    def command(*args):
        return [sys.executable, "-m", "aea.cli", "train", "--profile", "tiny", "--dataset", "market1501",
                "--evaluate", "--threads", "1", "epochs=2", "lr_decay_epoch=2", *args]
    env = {**os.environ, "AEA_DATA": str(tiny_root)}
    runs = {"grouped": tmp_path / "grouped", "alone": tmp_path / "alone"}
    aea_args = ("--method", "aea", "--out", "{root}/aea/seed{seed}", "--write-baseline1", "{root}/b1/seed{seed}")
    b4_args = ("--method", "baseline4", "--out", "{root}/b4/seed{seed}", "--baseline1", "{root}/b1/seed{seed}")
    for args in (aea_args, b4_args):
        for how, root in runs.items():
            seeds = ["0,1"] if how == "grouped" else ["0", "1"]
            for seed in seeds:
                filled = [a.replace("{root}", str(root)) for a in args]
                if how == "alone":
                    filled = [a.replace("{seed}", seed) for a in filled]
                done = subprocess.run(command("--seed", seed, *filled), env=env, capture_output=True, text=True)
                assert done.returncode == 0, done.stderr
    keys = ("rank1", "map_official", "map_noninterp", "cmc", "per_query", "seed")
    for run in ("aea", "b1", "b4"):
        for seed in (0, 1):
            grouped, alone = (runs[h] / run / f"seed{seed}" for h in ("grouped", "alone"))
            assert_same_weights(model_state(grouped), model_state(alone))
            a, b = (read_json(d / R.METRICS_FILE) for d in (grouped, alone))
            assert {k: a[k] for k in keys} == {k: b[k] for k in keys} and a["seed"] == seed
    stems = [model_state(runs["grouped"] / "aea" / f"seed{s}")["basic.backbone.stem.0.weight"] for s in (0, 1)]
    assert not torch.equal(*stems)  # two seeds, two trainings


def test_several_seeds_need_a_folder_each(capsys, tiny_root, tmp_path, monkeypatch):
    from aea.cli import main

    monkeypatch.setenv("AEA_DATA", str(tiny_root))
    argv = ["train", "--profile", "tiny", "--dataset", "market1501", "--method", "baseline1", "--seed", "0,1"]
    for extra, fragment in (([], "--out must name each run's folder with {seed}"),
                            (["--seed", "0,0"], "a seed is given twice"),
                            (["--seed", "0,x"], "give one seed or a comma-separated list"),
                            (["--seed", "0,2147483648"], "seed 2147483648 is not an integer in 0 <= seed < 2**31")):
        assert main([*argv, "--out", str(tmp_path / "run"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "run").exists()


def test_same_seed_gives_identical_metrics(tiny_market, tmp_path):
    cfg = tiny_config(epochs=2, lr_decay_epoch=2)
    first = [evaluate_run(T.train(cfg, tiny_market, tmp_path / name).parent, tiny_market) for name in ("a", "b")]
    keys = ("rank1", "rank5", "map_official", "map_noninterp", "cmc", "num_valid_query")
    assert {k: first[0][k] for k in keys} == {k: first[1][k] for k in keys}
    other_seed = resolve(load_profile("tiny"), "market1501", "aea", {**TINY, "epochs": 2, "lr_decay_epoch": 2}, seed=1)
    other = evaluate_run(T.train(other_seed, tiny_market, tmp_path / "c").parent, tiny_market)
    assert other["cmc"] != first[0]["cmc"] or other["map_official"] != first[0]["map_official"]


@pytest.mark.parametrize("method", ["baseline1", "aea", "baseline2", "baseline3", "reda", "baseline4", "aos",
                                    "noerase", "randbudget"])
def test_every_method_trains_and_evaluates_with_its_test_feature(method, tiny_market, tmp_path_factory):
    runs = tmp_path_factory.getbasetemp() / "methods"
    cfg = tiny_config(method, epochs=2, lr_decay_epoch=2)
    b1 = runs / "baseline1"
    uses_b1 = REGISTRY[method].uses_baseline1(cfg.triplet_mode, cfg.share_basic)
    if uses_b1 and not (b1 / R.MODEL_FILE).exists():
        T.train(tiny_config("baseline1", epochs=2, lr_decay_epoch=2), tiny_market, b1)
    run = runs / method
    T.train(cfg, tiny_market, run, baseline1_dir=b1 if uses_b1 else None)
    metrics = evaluate_run(run, tiny_market)
    expected = {"basic": 2560, "complementary": 2560, "concat": 5120}[REGISTRY[method].test_feature]
    assert metrics["feature_dim"] == expected and metrics["feature"] == REGISTRY[method].test_feature
    assert metrics["num_query"] == len(tiny_market.query) and 0.0 <= metrics["rank1"] <= 1.0
    log = losses(run)
    two = REGISTRY[method].two_networks
    assert log.ce_complementary.notna().iloc[-1] == two
    if REGISTRY[method].needs_baseline1:
        assert (run / R.STATIC_MASKS_FILE).is_file()


@pytest.mark.parametrize("method, fraction", [("noerase", 0.0), ("randbudget", 205 / 2048), ("aea", 205 / 2048)])
def test_mechanism_controls_erase_their_budget_in_training(method, fraction, tiny_market, tmp_path):
    """The controls of docs/mechanism.md in the training loop: no pixel erased without erasing; the random block
    erases exactly AEA's top-R % count (R = 10 of 64 x 32: round(204.8) = 205 pixels) in every image."""
    T.train(tiny_config(method, epochs=2, lr_decay_epoch=2, share_basic=False), tiny_market, tmp_path / method)
    log = losses(tmp_path / method)
    assert list(log.joint) == [0, 1]
    assert log.erased_fraction.iloc[1] == pytest.approx(fraction, abs=1e-9 if method != "aea" else 2e-3)


def test_baseline4_without_baseline1_run_is_a_clear_error(tiny_market, tmp_path):
    with pytest.raises(AEAError, match="needs a finished Baseline-1 run; pass --baseline1"):
        T.train(tiny_config("baseline4"), tiny_market, tmp_path / "b4")


def test_diverging_loss_stops_with_a_clear_error(tiny_market, tmp_path, monkeypatch):
    monkeypatch.setattr(T, "batch_hard_triplet", lambda f, p, m: f.sum() * float("nan"))
    with pytest.raises(AEAError, match="loss became nan at epoch 1 iteration 1: training diverged; lower lr"):
        T.train(tiny_config(), tiny_market, tmp_path / "nan")


def test_run_dir_of_another_config_is_refused(tiny_market, tmp_path):
    T.train(tiny_config(epochs=1, warmup_epochs=0, lr_decay_epoch=1), tiny_market, tmp_path / "run")
    with pytest.raises(AEAError, match="holds a run with another config"):
        T.train(tiny_config(epochs=1, warmup_epochs=0, lr_decay_epoch=1, erase_ratio=20), tiny_market, tmp_path / "run")


def basic_half(state: dict) -> dict:
    return {k[len("basic."):]: v for k, v in state.items() if k.startswith("basic.")}


@pytest.mark.parametrize("method", ["aea", "baseline3"])
def test_two_network_run_pairs_with_baseline1_bit_for_bit(tiny_market, tmp_path, method):
    """per_network triplet + the complementary network's own random stream: the basic half of a two-network
    run is Baseline 1's network, weight for weight, at the same seed (dropout active in both)."""
    values = {"epochs": 3, "warmup_epochs": 1, "max_iters_per_epoch": 2, "dropout": 0.5}
    b1 = T.train(resolve(load_profile("tiny"), "market1501", "baseline1", values, seed=4), tiny_market, tmp_path / "b1")
    two = T.train(resolve(load_profile("tiny"), "market1501", method, {**values, "share_basic": False}, seed=4),
                  tiny_market, tmp_path / "two")  # both networks trained: the premise of share_basic
    b1_state = torch.load(b1, weights_only=False)["state_dict"]
    two_state = torch.load(two, weights_only=False)["state_dict"]
    assert_same_weights(b1_state, basic_half(two_state))
    log = losses(tmp_path / "two")
    assert log.joint.iloc[-1] == 1 and log.accuracy_complementary.notna().iloc[-1]  # the second network trained
    pd.testing.assert_series_equal(losses(tmp_path / "b1").ce_basic, log.ce_basic)


@pytest.mark.parametrize("method", ["baseline3", "randbudget"])
def test_a_run_sharing_baseline1s_basic_network_equals_training_both(tiny_market, tmp_path, method):
    """share_basic: the complementary network trained alone beside Baseline 1's basic network is, weight for
    weight, the pair trained together; the log matches too (its sums of both networks' terms to rounding)."""
    values = {"epochs": 3, "warmup_epochs": 1, "max_iters_per_epoch": 2, "dropout": 0.5}
    profile = load_profile("tiny")
    b1 = T.train(resolve(profile, "market1501", "baseline1", values, seed=4), tiny_market, tmp_path / "b1").parent
    both = T.train(resolve(profile, "market1501", method, {**values, "share_basic": False}, seed=4), tiny_market,
                   tmp_path / "both")
    shared_cfg = resolve(profile, "market1501", method, values, seed=4)
    assert REGISTRY[method].basic_from_baseline1(shared_cfg.triplet_mode, shared_cfg.share_basic)
    shared = T.train(shared_cfg, tiny_market, tmp_path / "shared", baseline1_dir=b1)
    assert_same_weights(torch.load(both, weights_only=False)["state_dict"],
                        torch.load(shared, weights_only=False)["state_dict"])
    assert torch.load(shared, weights_only=False)["basic_from"] == str(b1)
    log_both, log_shared = losses(tmp_path / "both"), losses(tmp_path / "shared")
    exact = ["epoch", "lr", "joint", "iterations", "ce_basic", "accuracy_basic", "ce_complementary",
             "accuracy_complementary", "erased_fraction"]
    pd.testing.assert_frame_equal(log_both[exact], log_shared[exact])
    pd.testing.assert_frame_equal(log_both[["loss", "triplet"]], log_shared[["loss", "triplet"]], rtol=1e-6)


def test_baseline1_read_off_aeas_basic_network_equals_training_it(tiny_market, tmp_path):
    """share_basic: Baseline 1 written from AEA's run (per_network triplet) is the Baseline-1 run trained on its
    own, weight for weight and log row for log row; then it serves Baseline 3 as any Baseline-1 run does."""
    values = {"epochs": 3, "warmup_epochs": 1, "max_iters_per_epoch": 2, "dropout": 0.5}
    profile = load_profile("tiny")
    b1_cfg = resolve(profile, "market1501", "baseline1", values, seed=4)
    trained = T.train(b1_cfg, tiny_market, tmp_path / "trained")
    aea = T.train(resolve(profile, "market1501", "aea", values, seed=4), tiny_market, tmp_path / "aea").parent
    read = T.train(b1_cfg, tiny_market, tmp_path / "read", basic_of=aea)
    assert_same_weights(torch.load(trained, weights_only=False)["state_dict"],
                        torch.load(read, weights_only=False)["state_dict"])
    assert torch.load(read, weights_only=False)["basic_from"] == str(aea)
    pd.testing.assert_frame_equal(losses(tmp_path / "trained"), losses(tmp_path / "read"))
    b3 = T.train(resolve(profile, "market1501", "baseline3", values, seed=4), tiny_market, tmp_path / "b3",
                 baseline1_dir=tmp_path / "read")
    assert_same_weights(basic_half(torch.load(b3, weights_only=False)["state_dict"]),
                        torch.load(trained, weights_only=False)["state_dict"])


def test_basic_of_is_refused_where_the_network_is_trained(tiny_market, tmp_path):
    cfg = tiny_config("baseline1", share_basic=False)
    with pytest.raises(AEAError, match="share_basic=False is trained, not read off another run; drop --basic-of"):
        T.train(cfg, tiny_market, tmp_path / "b1", basic_of=tmp_path / "aea")
    b3 = T.train(tiny_config("baseline3", share_basic=False), tiny_market, tmp_path / "b3").parent
    with pytest.raises(AEAError, match=f"--basic-of {b3} is a baseline3 run; pass the aea run of market1501"):
        T.train(tiny_config("baseline1"), tiny_market, tmp_path / "b1 shared", basic_of=b3)


def test_sharing_needs_a_baseline1_run_trained_as_the_basic_network(tiny_market, tmp_path):
    values = {"epochs": 2, "warmup_epochs": 1, "max_iters_per_epoch": 1, "lr_decay_epoch": 2}
    with pytest.raises(AEAError, match=r"needs a finished Baseline-1 run; pass --baseline1 DIR .* share_basic=false"):
        T.train(tiny_config("baseline3", **values), tiny_market, tmp_path / "b3")
    b1 = T.train(tiny_config("baseline1", **{**values, "margin": 0.5}), tiny_market, tmp_path / "b1").parent
    with pytest.raises(AEAError, match=r"is a baseline1 run that differs in margin=0.5; pass the baseline1 run of "
                                       r"market1501, seed 0, with margin=0.3"):
        T.train(tiny_config("baseline3", **values), tiny_market, tmp_path / "b3", baseline1_dir=b1)


def test_joint_triplet_changes_the_basic_network(tiny_market, tmp_path):
    """The joint reading mixes erased-image features into the basic network's triplet: no longer Baseline 1."""
    values = {"epochs": 2, "warmup_epochs": 1, "max_iters_per_epoch": 2}
    b1 = T.train(resolve(load_profile("tiny"), "market1501", "baseline1", values, seed=4), tiny_market, tmp_path / "b1")
    joint = T.train(resolve(load_profile("tiny"), "market1501", "aea", {**values, "triplet_mode": "joint"}, seed=4),
                    tiny_market, tmp_path / "joint")
    b1_state = torch.load(b1, weights_only=False)["state_dict"]
    joint_state = basic_half(torch.load(joint, weights_only=False)["state_dict"])
    assert any(not torch.equal(b1_state[k], joint_state[k]) for k in b1_state)


def test_triplet_modes_on_a_hand_built_batch():
    """per_network = T(basic) + T(complementary); joint = one triplet over the 2B features."""
    from aea.losses import batch_hard_triplet

    torch.manual_seed(0)
    fb, fc = torch.randn(8, 5), torch.randn(8, 5)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    per = T._triplets(tiny_config(triplet_mode="per_network"), [(fb, pids), (fc, pids)])
    (joint,) = T._triplets(tiny_config(triplet_mode="joint"), [(fb, pids), (fc, pids)])
    assert [t.item() for t in per] == [batch_hard_triplet(f, pids, 0.3).item() for f in (fb, fc)]
    assert joint.item() == pytest.approx(batch_hard_triplet(torch.cat([fb, fc]), torch.cat([pids, pids]), 0.3).item())
    assert sum(per).item() != pytest.approx(joint.item())


def test_one_network_peer_form_trains_a_single_augmented_network(tiny_market, tmp_path):
    cfg = tiny_config("reda", peer_form="one_network", epochs=1, warmup_epochs=0)
    model_path = T.train(cfg, tiny_market, tmp_path / "reda1")
    state = torch.load(model_path, weights_only=False)["state_dict"]
    assert not any(k.startswith(("basic.", "complementary.")) for k in state)  # one ReIDNetwork
    metrics = evaluate_run(tmp_path / "reda1", tiny_market)
    assert metrics["feature"] == "basic" and metrics["feature_dim"] == 2560


def test_device_clock_waits_for_cuda_before_reading_the_time(monkeypatch):
    """erase_seconds must time the erase, not its launch: on CUDA the clock is read after a synchronise."""
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append(("sync", device)))
    monkeypatch.setattr(T.time, "perf_counter", lambda: events.append(("clock", None)) or 7.5)
    cuda = torch.device("cuda", 0)
    assert T.device_clock(cuda) == 7.5
    assert events == [("sync", cuda), ("clock", None)]
    events.clear()
    assert T.device_clock(torch.device("cpu")) == 7.5
    assert events == [("clock", None)]
