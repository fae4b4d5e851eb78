"""The paper-profile rehearsal (workflow/scripts/rehearse-paper.sh) on the tiny generated Market-1501: the `paper`
profile's ResNet-50 at 256x128 through the CLI, the pretrained-weights loading path with a random-valued stand-in
file, two networks trained for one iteration and evaluated. The market-scale rehearsal is the same script with
SIZE unset (docs/datasets.md); this keeps its every step in the default suite (about a minute on 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "workflow/scripts/rehearse-paper.sh"


@pytest.mark.slow
def test_paper_profile_rehearsal_runs_end_to_end(tmp_path):
    env = {**os.environ, "SIZE": "tiny", "ITERS": "1", "THREADS": "2",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "work")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "work/runs/tiny/aea"
    metrics = json.loads((run / "metrics.json").read_text())
    config = metrics["config"]
    assert (config["profile"], config["arch"], config["height"], config["width"]) == ("paper", "resnet50", 256, 128)
    assert config["pretrained"] == str(tmp_path / "work/resnet50-stand-in.pth")
    assert metrics["feature_dim"] == 2 * 2560  # two networks, global + 4 parts each
    assert (metrics["num_query"], metrics["num_gallery"]) == (32, 36)
    # both networks were initialised from the stand-in file through the real loading path
    assert done.stderr.count("loaded 318 pretrained tensors for resnet50") == 2
