"""The version-3 mechanism table (aea.tables.mechanism_v3) on constructed metrics: hand-computed intervals over
generator seeds, Holm, the verdict rules, K3's three outcomes, the per-region breakdown and the two checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as scipy_t

from aea.cli import main
from aea.errors import AEAError
from aea.io import write_json
from aea.mechanism import LABELS, REGIONS
from aea.tables import mechanism_v3 as M

Q = 10
# each query's hidden region on any-p1: two queries per region
REGION_OF = [REGIONS[q // 2] for q in range(Q)]
GENS = range(5)
BASE = 0.6 + 0.2 * np.cos(np.arange(Q))
SETS = {"p0": (0.0, "upper"), "upper-p0.2": (0.2, "upper"), "upper-p0.4": (0.4, "upper"), "any-p1": (1.0, "any")}


def run(method: str, test_set: str, unit: tuple[int, int], ap: np.ndarray, *, erased_upper: float = 0.26,
        ratio: float = 40) -> dict:
    gen, seed = unit
    p, region = SETS[test_set]
    shares = dict.fromkeys(LABELS, 0.0)
    ap = np.clip(ap, 0.0, 1.0)
    return {
        "profile": "mechanism-v3", "dataset": "market1501", "method": method, "run_name": method, "seed": seed,
        "map_official": float(np.mean(ap)), "rank1": float(np.mean(ap >= 0.5)),
        "per_query": {"query": list(range(Q)), "ap_official": ap.tolist(), "ap_noninterp": ap.tolist(),
                      "first_match_rank": [1 if a >= 0.5 else 3 for a in ap]},
        "mechanism": {"data": {"generator": "bodyparts", "generator_version": 3, "variant": "redundant",
                               "occlusion": p, "occluded_region": region, "seed": gen},
                      "erase_ratio": ratio,
                      "erased_share_per_part": {**shares, "upper": erased_upper, "background": 1 - erased_upper},
                      "pixel_share_per_part": {**shares, "upper": 0.13, "background": 0.87}},
    }


def experiment(gain: dict | None = None, gens=GENS, seeds=(0,), noerase=0.01, randbudget=-0.01) -> list[dict]:
    """AEA = B1 + gain[test set] + a per-generator jitter (0.2 points x (gen - 2): mean 0 over gens 0-4);
    no erasing = B1 + ``noerase``; random = AEA + ``randbudget``. On any-p1 Baseline 1 loses 0.3 AP on the
    queries hiding the upper body and 0.1 on the others."""
    gain = {"p0": 0.0, "upper-p0.2": 0.03, "upper-p0.4": 0.06, "any-p1": 0.02, **(gain or {})}
    out = []
    for gen in gens:
        for seed in seeds:
            unit = (gen, seed)
            jitter = 0.002 * (gen - 2) + 0.001 * seed
            for ts in SETS:
                b1 = BASE.copy()
                if ts == "any-p1":
                    b1 = b1 - np.array([0.3 if r == "upper" else 0.1 for r in REGION_OF])
                aea = b1 + gain[ts] + jitter
                out += [run("baseline1", ts, unit, b1), run("aea", ts, unit, aea),
                        run("noerase", ts, unit, b1 + noerase), run("randbudget", ts, unit, aea + randbudget)]
    return out


def rows_of(metrics: list[dict], regions=None) -> dict[str, dict]:
    regions = {g: REGION_OF for g in GENS} if regions is None else regions
    return {r["id"]: r for r in M.build_mechanism_v3(metrics, regions).to_dict("records")}


def test_known_differences_give_the_registered_verdicts():
    rows = rows_of(experiment())
    assert set(M.HOLM_FAMILY) | {"K3"} == {t.id for t in M.PRIMARY}
    assert rows["P1a"]["diff"] == pytest.approx(3.0) and rows["P1b"]["diff"] == pytest.approx(6.0)
    assert rows["P2"]["diff"] == pytest.approx(6.0)  # the jitter cancels between p0 and upper-p0.4
    assert rows["P4"]["diff"] == pytest.approx(5.0) and rows["P5"]["diff"] == pytest.approx(1.0)
    assert rows["E1"]["diff"] == pytest.approx(1.0) and rows["E2"]["diff"] == pytest.approx(5.0)
    for tid in ("P1a", "P1b", "P2", "P4", "P5"):
        assert rows[tid]["verdict"] == "holds", tid
        assert rows[tid]["n_generators"] == 5 and rows[tid]["df"] == 4 and rows[tid]["holm_p"] < 0.05
    assert rows["E1"]["verdict"] == rows["E2"]["verdict"] == "above 0"
    # p0: AEA - B1 = the jitter only, mean 0, spread +-0.4 points: equivalent within 3
    assert rows["K3"]["diff"] == pytest.approx(0.0, abs=1e-9) and rows["K3"]["verdict"] == "holds"
    assert rows["P4@p0"]["role"] == "secondary" and math.isnan(rows["P4@p0"]["holm_p"])
    assert rows["P1b:rank1"]["metric"] == "rank1"


def test_interval_over_generator_seeds_by_hand():
    # P1a per generator seed: 3 + 0.2 (g - 2) points, g = 0..4: mean 3, SD 0.2 x sqrt(2.5) = 0.316228, SE 0.141421,
    # t(4, 0.975) = 2.776445, t(4, 0.95) = 2.131847
    row = rows_of(experiment())["P1a"]
    se = 0.2 * math.sqrt(2.5) / math.sqrt(5)
    assert row["sd"] == pytest.approx(0.2 * math.sqrt(2.5))
    assert (row["low"], row["high"]) == pytest.approx((3 - 2.776445 * se, 3 + 2.776445 * se), abs=1e-5)
    assert (row["low90"], row["high90"]) == pytest.approx((3 - 2.131847 * se, 3 + 2.131847 * se), abs=1e-5)
    # t = 3 / 0.141421 = 21.21 on 4 df
    assert row["t_p"] == pytest.approx(2 * scipy_t.sf(3 / se, 4))
    # two training seeds per generator seed: their mean is the generator's value (jitter + 0.05 points)
    row2 = rows_of(experiment(seeds=(0, 1)))["P1a"]
    assert row2["n_units"] == 10 and row2["n_generators"] == 5 and row2["df"] == 4
    assert row2["diff"] == pytest.approx(3.05) and row2["sd"] == pytest.approx(row["sd"])


def test_holm_over_the_family_and_the_failing_side():
    # only AEA and random erasing: P5 alone in the family has a p-value; AEA below random by 1 +- jitter
    runs = [m for m in experiment(randbudget=0.01) if m["method"] in ("aea", "randbudget")]
    rows = rows_of(runs)
    assert rows["P1a"]["verdict"] == "not evaluable" and math.isnan(rows["P1a"]["holm_p"])
    # random = AEA + 1 point exactly in every unit: SD 0, the interval [-1, -1], t p 0, Holm 0: fails
    assert rows["P5"]["diff"] == pytest.approx(-1.0) and rows["P5"]["verdict"] == "fails"
    # a wrong-side interval whose Holm p is not < 0.05 stays inconclusive: 2 generator seeds, differences -1 and -3
    runs = []
    for gen, d in ((0, 0.01), (1, 0.03)):
        runs += [run("aea", "upper-p0.4", (gen, 0), BASE), run("randbudget", "upper-p0.4", (gen, 0), BASE + d)]
    row = rows_of(runs)["P5"]
    # mean -2, SD sqrt(2), SE 1, df 1: t = -2, p = 1 - 2 atan(2) / pi = 0.2952; Holm over the 7 (the 6 others
    # count as p = 1): min(1, 7 x 0.2952) = 1; interval [-2 - 12.706, -2 + 12.706]
    assert row["t_p"] == pytest.approx(1 - 2 * math.atan(2) / math.pi) and row["holm_p"] == 1.0
    assert row["low"] == pytest.approx(-2 - 12.706205, abs=1e-5) and row["verdict"] == "inconclusive"
    # one generator seed: no interval, nothing decided
    row = rows_of(runs[:2])["P5"]
    assert math.isnan(row["low"]) and row["verdict"] == "inconclusive"


def test_holm_adjusts_seven_tests():
    rows = rows_of(experiment(gain={"upper-p0.2": 0.0005}))
    # P1a: 0.05 points +- 0.4: its raw p is the largest of the family; Holm multiplies the smallest by 7
    ps = {t: rows[t]["t_p"] for t in M.HOLM_FAMILY}
    smallest = min(ps, key=ps.get)
    assert rows[smallest]["holm_p"] == pytest.approx(min(1.0, 7 * ps[smallest]))
    assert rows["P1a"]["holm_p"] == pytest.approx(max(rows[t]["holm_p"] for t in M.HOLM_FAMILY))
    assert rows["P1a"]["verdict"] == "inconclusive"


def test_k3_outcomes():
    # AEA - B1 at p0: g + jitter; SE 0.141421 points, 90% half-width 2.131847 x SE = 0.3015
    for g, verdict in ((0.02, "holds"), (0.03, "inconclusive"), (0.05, "fails"), (-0.05, "fails")):
        row = rows_of(experiment(gain={"p0": g}))["K3"]
        assert row["diff"] == pytest.approx(100 * g) and row["verdict"] == verdict, (g, row["low90"], row["high90"])


def test_region_breakdown_and_the_checks():
    rows = rows_of(experiment())
    # Baseline 1's drop from p0 to any-p1 on the queries hiding each region: 30 points for the upper body, 10 else
    assert rows["R-B1:upper"]["diff"] == pytest.approx(30.0) and rows["R-B1:head"]["diff"] == pytest.approx(10.0)
    assert rows["reliance"]["verdict"] == "holds" and rows["reliance"]["diff"] == pytest.approx(20.0)
    assert rows["R-baseline1:item"]["diff"] == pytest.approx(2.0)
    assert rows["R-noerase:lower"]["diff"] == pytest.approx(1.0)
    # coverage: 0.26 x 40 / 100 / 0.13 = 0.8 >= 0.75
    assert rows["coverage"]["diff"] == pytest.approx(0.8) and rows["coverage"]["verdict"] == "holds"
    # queries of another generator seed hide other regions: the breakdown follows each seed's own map
    shifted = {g: (REGION_OF if g else REGION_OF[2:] + REGION_OF[:2]) for g in GENS}
    rows = rows_of(experiment(), shifted)
    assert rows["R-B1:upper"]["diff"] == pytest.approx((4 * 30 + 10) / 5)  # seed 0's "upper" queries lost 0.1
    # without the map no breakdown row is evaluable, the others are unchanged
    rows = rows_of(experiment(), {})
    assert rows["R-B1:upper"]["verdict"] == "not evaluable" and rows["reliance"]["verdict"] == "not evaluable"
    assert rows["P1b"]["verdict"] == "holds"
    # a mask covering less than the target (0.2 x 40 / 100 / 0.13 = 0.615): the coverage check fails
    assert rows_of([run("baseline1", "p0", (0, 0), BASE, erased_upper=0.2)])["coverage"]["verdict"] == "fails"


def test_bad_input_is_refused_and_v2_runs_keep_their_table():
    runs = experiment()
    with pytest.raises(AEAError, match="two runs of aea on upper-p0.4"):
        M.build_mechanism_v3(runs + [m for m in runs if m["method"] == "aea"
                                     and m["mechanism"]["data"]["occlusion"] == 0.4][:1])
    v2 = {**runs[0], "mechanism": {**runs[0]["mechanism"], "data": {**runs[0]["mechanism"]["data"],
                                                                      "generator_version": 2}}}
    with pytest.raises(AEAError, match="mix generator version 3"):
        M.is_version3([runs[0], v2])
    assert not M.is_version3([v2]) and M.is_version3(runs)
    with pytest.raises(AEAError, match="not evaluated on generator-version-3"):
        M.build_mechanism_v3([v2])


def test_cli_writes_the_v3_table(tmp_path, monkeypatch):
    monkeypatch.setattr(M, "regions_of", lambda metrics: {g: REGION_OF for g in GENS})  # no data roots here
    paths = []
    for i, m in enumerate(experiment()):
        paths.append(tmp_path / "runs" / f"{i}.json")
        paths[-1].parent.mkdir(exist_ok=True)
        write_json(paths[-1], m)
    assert main(["table", "mechanism", "--metrics", *map(str, paths), "--out-dir", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "mechanism.csv").set_index("id")
    assert table.loc["P1b", "verdict"] == "holds" and table.loc["reliance", "verdict"] == "holds"
    units = pd.read_csv(tmp_path / "out" / "mechanism.units.csv")
    assert len(units) == len(paths) and set(units["test_set"]) == set(SETS)
    b1 = units[(units.method == "baseline1") & (units.test_set == "p0")]["map_official"]
    assert b1.tolist() == pytest.approx([100 * BASE.mean()] * 5)
    md = (tmp_path / "out" / "mechanism.md").read_text()
    assert "| P1b | prediction |" in md and "; 90% [" in md and "| upper-p0.4 |" in md
    assert (tmp_path / "out" / "mechanism.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
