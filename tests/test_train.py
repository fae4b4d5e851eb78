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

from aea import train as T
from aea.config import load_profile, resolve
from aea.errors import AEAError
from aea.evaluate import evaluate_run
from aea.methods import REGISTRY


TINY = {"warmup_epochs": 1, "max_iters_per_epoch": 1}


def tiny_config(method: str = "aea", **overrides):
    values = {"epochs": 3, "warmup_epochs": 1, "lr_decay_epoch": 2, "max_iters_per_epoch": 1, **overrides}
    return resolve(load_profile("tiny"), "market1501", method, values, seed=0)


def model_state(run_dir):
    return torch.load(run_dir / T.MODEL_FILE, weights_only=False)["state_dict"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def losses(run_dir):
    return pd.read_csv(run_dir / T.LOG_FILE).drop(columns=["seconds", "erase_seconds"])


def test_resume_after_stop_equals_uninterrupted(tiny_market, tmp_path):
    cfg = tiny_config()
    T.train(cfg, tiny_market, tmp_path / "straight")
    T.train(cfg, tiny_market, tmp_path / "resumed", stop_after_epoch=0)
    assert not (tmp_path / "resumed" / T.MODEL_FILE).exists()
    assert len(losses(tmp_path / "resumed")) == 1
    T.train(cfg, tiny_market, tmp_path / "resumed")
    assert_same_weights(model_state(tmp_path / "straight"), model_state(tmp_path / "resumed"))
    pd.testing.assert_frame_equal(losses(tmp_path / "straight"), losses(tmp_path / "resumed"))
    # the joint epochs really trained the complementary network on erased images
    log = losses(tmp_path / "straight")
    assert list(log.joint) == [0, 1, 1] and log.erased_fraction.iloc[1] == pytest.approx(0.10, abs=0.01)
    assert list(log.lr) == pytest.approx([cfg.lr, cfg.lr, cfg.lr * cfg.lr_gamma])  # step at lr_decay_epoch=2


def test_killed_process_resumes_to_the_same_model(tiny_root, tiny_market, tmp_path):
    """A real SIGKILL during training, then the same command again: the model equals an uninterrupted run."""
    cfg = tiny_config(epochs=4, lr_decay_epoch=3)
    T.train(cfg, tiny_market, tmp_path / "straight")
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "aea.cli", "train", "--profile", "tiny", "--dataset", "market1501", "--method",
           "aea", "--out", str(out), "epochs=4", "warmup_epochs=1", "lr_decay_epoch=3", "max_iters_per_epoch=1"]
    env = {**os.environ, "AEA_DATA": str(tiny_root)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / T.CHECKPOINT_FILE).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / T.CHECKPOINT_FILE).exists() and not (out / T.MODEL_FILE).exists(), "kill came too late"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    assert_same_weights(model_state(tmp_path / "straight"), model_state(out))


def test_same_seed_gives_identical_metrics(tiny_market, tmp_path):
    cfg = tiny_config(epochs=2, lr_decay_epoch=2)
    first = [evaluate_run(T.train(cfg, tiny_market, tmp_path / name).parent, tiny_market) for name in ("a", "b")]
    keys = ("rank1", "rank5", "map_official", "map_noninterp", "cmc", "num_valid_query")
    assert {k: first[0][k] for k in keys} == {k: first[1][k] for k in keys}
    other_seed = resolve(load_profile("tiny"), "market1501", "aea", {**TINY, "epochs": 2, "lr_decay_epoch": 2}, seed=1)
    other = evaluate_run(T.train(other_seed, tiny_market, tmp_path / "c").parent, tiny_market)
    assert other["cmc"] != first[0]["cmc"] or other["map_official"] != first[0]["map_official"]


@pytest.mark.parametrize("method", ["baseline1", "aea", "baseline2", "baseline3", "reda", "baseline4", "aos"])
def test_every_method_trains_and_evaluates_with_its_test_feature(method, tiny_market, tmp_path_factory):
    runs = tmp_path_factory.getbasetemp() / "methods"
    cfg = tiny_config(method, epochs=2, lr_decay_epoch=2)
    b1 = runs / "baseline1"
    if REGISTRY[method].needs_baseline1 and not (b1 / T.MODEL_FILE).exists():
        T.train(tiny_config("baseline1", epochs=2, lr_decay_epoch=2), tiny_market, b1)
    run = runs / method
    T.train(cfg, tiny_market, run, baseline1_dir=b1 if REGISTRY[method].needs_baseline1 else None)
    metrics = evaluate_run(run, tiny_market)
    expected = {"basic": 2560, "complementary": 2560, "concat": 5120}[REGISTRY[method].test_feature]
    assert metrics["feature_dim"] == expected and metrics["feature"] == REGISTRY[method].test_feature
    assert metrics["num_query"] == len(tiny_market.query) and 0.0 <= metrics["rank1"] <= 1.0
    log = losses(run)
    two = REGISTRY[method].two_networks
    assert log.ce_complementary.notna().iloc[-1] == two
    if REGISTRY[method].needs_baseline1:
        assert (run / T.STATIC_MASKS_FILE).is_file()


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
