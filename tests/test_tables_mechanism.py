"""The mechanism table (aea.tables.mechanism) on constructed metrics: known differences give known verdicts."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from aea.cli import main
from aea.errors import AEAError
from aea.io import read_json, write_json
from aea.mechanism import LABELS
from aea.tables import mechanism as M

Q = 20
UNITS = [(g, s) for g in (0, 1) for s in range(5)]
BASE = 0.5 + 0.3 * np.sin(np.arange(Q))  # Baseline 1's per-query AP, the same shape in every unit


def run(method: str, variant: str, p: float, unit: tuple[int, int], ap: np.ndarray, chance: float = 0.1) -> dict:
    gen, seed = unit
    shares = dict.fromkeys(LABELS, 0.0)
    return {
        "profile": "mechanism", "dataset": "market1501", "method": method, "run_name": method, "seed": seed,
        "map_official": float(np.mean(ap)),
        "per_query": {"query": list(range(Q)), "ap_official": ap.tolist(), "ap_noninterp": ap.tolist(),
                      "first_match_rank": [1 if a >= 0.5 else 3 for a in ap]},
        "mechanism": {"data": {"generator": "bodyparts", "variant": variant, "occlusion": p, "seed": gen},
                      "chance_map_official": chance,
                      "attention_iou": {"mean": 0.2 if method == "aea" else 0.9},
                      "erased_share_per_part": {**shares, "upper": 0.6, "background": 0.4},
                      "pixel_share_per_part": {**shares, "upper": 0.13, "background": 0.87}},
    }


def experiment(gain=(0.005, 0.05, 0.10), units=UNITS, k3_gain=0.005) -> list[dict]:
    """Redundant: AEA = B1 + gain(p) + a small positive per-unit jitter; B2 = B1 - 0.2; no erasing = B1 + 0.01;
    random erasing = AEA + 0.02. Single-cue: AEA = B1 + a jitter of mean 0; B2 at 0.12 against a chance of 0.1."""
    out = []
    for unit in units:
        jitter = 0.001 * (unit[0] * 5 + unit[1] + 1)  # 0.001 .. 0.010, one per unit
        for p, g in zip((0.0, 0.2, 0.4), gain):
            g = k3_gain if p == 0.0 else g
            b1 = BASE - 0.1 * p
            out += [run("baseline1", "redundant", p, unit, b1), run("aea", "redundant", p, unit, b1 + g + jitter),
                    run("baseline2", "redundant", p, unit, b1 - 0.2), run("noerase", "redundant", p, unit, b1 + 0.01),
                    run("randbudget", "redundant", p, unit, b1 + g + jitter + 0.02)]
        sym = 0.002 * (unit[0] * 5 + unit[1] - 4.5)  # -0.009 .. +0.009, mean 0
        out += [run("baseline1", "single-cue", 0.0, unit, BASE + 0.1),
                run("aea", "single-cue", 0.0, unit, BASE + 0.1 + sym),
                run("baseline2", "single-cue", 0.0, unit, np.full(Q, 0.12))]
    return out


def by_id(table: pd.DataFrame) -> dict[str, dict]:
    return {r["id"]: r for r in table.to_dict("records")}


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005 = 0.02, 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(1 x 0.04, 0.06)
    assert M.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert M.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = M.holm([0.01, math.nan])  # a test not evaluated counts as p = 1: m stays 2
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1])


def test_wilcoxon_exact_by_hand():
    # all 10 differences positive: exact two-sided p = 2 / 2^10; one negative of the smallest rank: 2 x 2 / 2^10
    assert M.wilcoxon_p(np.arange(1, 11)) == pytest.approx(2 / 1024)
    assert M.wilcoxon_p([-1, *range(2, 11)]) == pytest.approx(4 / 1024)
    assert M.wilcoxon_p(np.zeros(10)) == 1.0 and math.isnan(M.wilcoxon_p([]))


def test_known_differences_give_the_predicted_verdicts():
    table = M.build_mechanism(experiment(), draws=400)
    rows = by_id(table)
    assert list(table.columns) == M.COLUMNS and len(table) == len(M.TESTS)
    mean_jitter = 100 * 0.001 * 5.5
    assert rows["P1a"]["diff"] == pytest.approx(5 + mean_jitter) and rows["P1a"]["n_units"] == 10
    assert rows["P1b"]["diff"] == pytest.approx(10 + mean_jitter)
    assert rows["P2a"]["diff"] == pytest.approx(4.5) and rows["P2b"]["diff"] == pytest.approx(5.0)
    assert rows["P3"]["diff"] == pytest.approx(-20.0) and rows["P4"]["diff"] == pytest.approx(9 + mean_jitter)
    assert rows["P5"]["diff"] == pytest.approx(-2.0)
    # every unit's difference has the predicted sign: exact Wilcoxon p = 2/1024, Holm over 8: at most 8 x that
    assert rows["P1a"]["wilcoxon_p"] == pytest.approx(2 / 1024) and rows["P1a"]["holm_p"] <= 8 * 2 / 1024
    for pid in ("P1a", "P1b", "P2a", "P3", "P4"):
        assert rows[pid]["verdict"] == "holds", pid
        assert rows[pid]["low"] * rows[pid]["high"] > 0
    # P2b: the jitter cancels in gain(0.4) - gain(0.2): every unit differs by exactly 5, Wilcoxon has ties only
    assert rows["P2b"]["verdict"] == "holds" and rows["P2b"]["low"] == pytest.approx(5.0)
    assert rows["P5"]["verdict"] == "fails" and rows["P5"]["high"] < 0
    assert rows["K1"]["verdict"] == "holds" and rows["K1"]["low"] < 0 < rows["K1"]["high"]
    assert rows["K2"]["verdict"] == "holds" and rows["K2"]["diff"] == pytest.approx(2.0)
    assert rows["K3"]["verdict"] == "holds" and -3 <= rows["K3"]["low"] <= rows["K3"]["high"] <= 3
    assert set(rows["P4@p=0"]["comparison"].split(" - ")) == {"aea@p=0", "noerase@p=0"}
    assert rows["P4@p=0.2"]["role"] == "secondary" and math.isnan(rows["P4@p=0.2"]["holm_p"])
    assert set(table.loc[table["role"] != "secondary", "id"]) == {t.id for t in M.PRIMARY}
    assert (table.loc[table["id"].str.endswith(":rank1"), "metric"] == "rank1").all()


def test_verdicts_that_fail_or_stay_open():
    # AEA far above B1 at p = 0: K3 fails (interval wholly above +3); P2a fails (the gain shrinks)
    rows = by_id(M.build_mechanism(experiment(gain=(0.0, 0.05, 0.10), k3_gain=0.08), draws=400))
    assert rows["K3"]["verdict"] == "fails" and rows["K3"]["low"] > 3
    assert rows["P2a"]["verdict"] == "fails" and rows["P2a"]["diff"] == pytest.approx(-3.0)
    # 3 units, every difference positive: the interval is above 0, but the exact Wilcoxon p = 2/8 cannot
    # pass Holm: inconclusive, not holds
    rows = by_id(M.build_mechanism(experiment(units=UNITS[:3]), draws=400))
    assert rows["P1a"]["low"] > 0 and rows["P1a"]["wilcoxon_p"] == pytest.approx(0.25)
    assert rows["P1a"]["verdict"] == "inconclusive" and rows["P1a"]["n_units"] == 3


def test_k1_and_k2_fail_by_their_rules():
    runs = experiment()
    for m in runs:
        if m["mechanism"]["data"]["variant"] == "single-cue" and m["method"] in ("aea", "baseline2"):
            ap = np.asarray(m["per_query"]["ap_official"]) + (0.05 if m["method"] == "aea" else 0.6)
            m["per_query"]["ap_official"] = ap.tolist()
            m["map_official"] = float(ap.mean())
    rows = by_id(M.build_mechanism(runs, draws=400))
    assert rows["K1"]["verdict"] == "fails" and rows["K1"]["low"] > 0
    # B2 0.72 vs B1 ~0.6, chance 0.1: 62 points above chance is not under a quarter of B1's ~50
    assert rows["K2"]["verdict"] == "fails" and rows["K2"]["diff"] == pytest.approx(62.0)


def test_missing_runs_are_not_evaluable_and_bad_input_is_refused():
    runs = [m for m in experiment() if m["method"] != "randbudget"]
    rows = by_id(M.build_mechanism(runs, draws=200))
    assert rows["P5"]["verdict"] == "not evaluable" and rows["P5"]["n_units"] == 0
    assert rows["P1a"]["verdict"] == "holds"
    with pytest.raises(AEAError, match="two runs of aea on redundant p=0.2"):
        M.build_mechanism(runs + [m for m in runs if m["method"] == "aea"][1:2])
    with pytest.raises(AEAError, match="not evaluated on mechanism data"):
        M.build_mechanism([{**runs[0], "mechanism": None}])


def test_measures_and_c3():
    measured = M.measures(experiment(units=UNITS[:2]))
    aea = measured[(measured["method"] == "aea") & (measured["p"] == 0.0) & (measured["variant"] == "redundant")]
    assert aea["attention_iou"].item() == pytest.approx(0.2) and aea["n_units"].item() == 2
    row = measured.iloc[0].to_dict()
    assert M.c3_holds(row)  # upper 0.6 of the erased pixels, the largest, >= 2 x its 0.13 of the pixels
    assert not M.c3_holds({**row, "pixels_upper": 0.31})
    assert not M.c3_holds({**row, "erased_upper": 0.3, "erased_background": 0.7})


def test_make_mechanism_writes_csv_markdown_and_plot(tmp_path):
    paths = []
    for i, m in enumerate(experiment(units=UNITS[:4])):
        paths.append(tmp_path / "runs" / f"{i}.json")
        paths[-1].parent.mkdir(exist_ok=True)
        write_json(paths[-1], m)
    probe = "import sys, aea.tables.mechanism; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.split() == ["False", "False"]  # the workflow imports it cheaply
    table = M.make_mechanism(paths, tmp_path / "out")
    csv, md, png, provenance = M.mechanism_files(tmp_path / "out")
    assert pd.read_csv(csv)["id"].tolist() == table["id"].tolist()
    text = md.read_text()
    assert "| P1a | prediction |" in text and "![gain" in text and "| redundant | 0 | baseline1 | 4 |" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(read_json(provenance)["runs"]) == len(paths)
    gains = M.gains(table)
    assert set(gains["reference"]) == set(M.GAIN_REFERENCES)
    assert gains[gains["reference"] == "baseline1"]["p"].tolist() == [0.0, 0.2, 0.4]


def test_cli_table_mechanism(tmp_path):
    paths = []
    for i, m in enumerate(experiment(units=UNITS[:2])):
        paths.append(tmp_path / f"{i}.json")
        write_json(paths[-1], m)
    assert main(["table", "mechanism", "--metrics", *map(str, paths), "--out-dir", str(tmp_path / "out")]) == 0
    assert pd.read_csv(tmp_path / "out" / "mechanism.csv").set_index("id").loc["P1a", "n_units"] == 2
