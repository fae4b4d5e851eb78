"""Tables from hand-made metrics: statistics, provenance, the diff against the paper, the claims."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from aea import tables as T
from aea.config import run_name
from aea.errors import AEAError

PAPER_DIR = Path(__file__).resolve().parent.parent / "results" / "paper"


def metrics(method: str, dataset: str, seed: int, rank1: float, mAP: float, overrides: dict | None = None,
            profile: str = "smoke") -> dict:
    overrides = overrides or {}
    cuhk = dataset.startswith("cuhk03")
    config = {"alpha1": 1.0, "alpha2": 1.0, "erase_ratio": 20.0 if cuhk else 10.0, "erase_layer": "conv2",
              "margin": 0.35 if cuhk else 0.3, **overrides}
    return {"profile": profile, "dataset": dataset, "method": method, "run_name": run_name(method, overrides),
            "seed": seed, "overrides": overrides, "config": config, "rank1": rank1, "map_official": mAP,
            "map_noninterp": mAP - 0.01, "git_commit": "c0ffee", "config_hash": f"hash{seed}-{method}",
            "device": "cpu", "machine": dict(MACHINE), "train_seconds": 10.0, "eval_seconds": 2.5,
            "per_query": per_query(rank1, mAP)}


MACHINE = {"cpu_model": "AMD EPYC", "cpu_capability": "AVX512", "torch": "2.14.1", "numpy": "2.4.6", "threads": 1,
           "gpu": ""}


def per_query(rank1: float, mAP: float, n: int = 100) -> dict:
    """n queries whose mean hit rate is ``rank1`` and whose every AP is ``mAP`` (fractions)."""
    hits = round(rank1 * n)
    return {"query": list(range(n)), "ap_official": [mAP] * n, "ap_noninterp": [mAP - 0.01] * n,
            "first_match_rank": [1] * hits + [2] * (n - hits)}


def runs_of(cells: dict, seeds: tuple[int, ...] = (0, 1)) -> list[dict]:
    """cells: (method, dataset, overrides items tuple) -> (rank1, mAP) fractions; same value for every seed."""
    return [metrics(m, ds, s, r1, mp, dict(ov)) for (m, ds, ov), (r1, mp) in cells.items() for s in seeds]


def table_of(name: str, cells: dict, seeds: tuple[int, ...] = (0,)) -> pd.DataFrame:
    return T.build_table(name, runs_of(cells, seeds))


def full_cells(name: str, score) -> dict:
    """Every default run of table ``name`` with (rank1, mAP) = score(method, dataset, overrides)."""
    return {(r.method, r.dataset, tuple(sorted(r.overrides.items()))): score(r.method, r.dataset, r.overrides)
            for r in T.table_runs(name)}


def claims_of(name: str, cells: dict, seeds: tuple[int, ...] = (0, 1)) -> pd.DataFrame:
    return T.evaluate_claims(T.group_runs(name, runs_of(cells, seeds)), T.CLAIMS[name])


def status(name: str, cells: dict, seeds: tuple[int, ...] = (0, 1)) -> list[str]:
    """The verdict of each claim of table ``name``, in order."""
    result = claims_of(name, cells, seeds)
    return list(result.drop_duplicates("claim")["verdict"])


# ---------------------------------------------------------------- registry


def test_table_runs_cover_the_papers_grids():
    t2 = T.table_runs("table2")
    assert len(t2) == (5 + 1) * 4 and t2[0] == T.RunSpec("market1501", "aea", {})
    # the harness's control row follows the paper's methods; the paper's cells alone leave it out
    assert [r.method for r in t2[:6]] == ["aea", "baseline1", "baseline2", "baseline3", "baseline4", "noerase"]
    assert "noerase" not in {r.method for r in T.table_runs("table2", controls=False)}
    assert [r.method for r in T.table_runs("table6", ["market1501"])] == ["reda", "aos", "aea", "noerase"]
    t7 = T.table_runs("table7")
    assert len(t7) == 25 and T.table_runs("table8") == t7
    assert {r.dataset for r in t7} == {"market1501"}
    assert {(r.overrides["alpha1"], r.overrides["alpha2"]) for r in t7} == {
        (a, b) for a in (0.1, 0.5, 1.0, 1.5, 2.0) for b in (0.1, 0.5, 1.0, 1.5, 2.0)}
    assert [r.overrides["erase_layer"] for r in T.table_runs("table9")] == ["conv1", "conv2", "conv3", "conv4",
                                                                            "conv5"]
    assert len(T.table_runs("table9", datasets=T.DATASETS)) == 20
    f6 = T.table_runs("fig6")
    assert len(f6) == 4 * 6 and f6[1].overrides == {"erase_ratio": 10.0}
    f7 = T.table_runs("fig7")
    market = [r.overrides["margin"] for r in f7 if r.dataset == "market1501"]
    cuhk = [r.overrides["margin"] for r in f7 if r.dataset == "cuhk03-detected"]
    assert market == [0.1, 0.2, 0.3, 0.4, 0.5] and cuhk == [0.1, 0.2, 0.3, 0.35, 0.4, 0.5]
    # given values replace the paper's; a dataset's own extra point (CUHK03's m = 0.35, its default run and
    # the subject of its claim) stays, so the claim remains evaluable with a profile's shorter sweep
    assert [r.overrides["margin"] for r in T.table_runs("fig7", ["cuhk03-labeled"], {"margin": [0.3, 0.1]})] == [
        0.1, 0.3, 0.35]
    assert [r.overrides["margin"] for r in T.table_runs("fig7", ["market1501"], {"margin": [0.3, 0.1]})] == [0.1, 0.3]


def test_table_runs_refuses_unknown_names():
    with pytest.raises(AEAError, match="unknown table"):
        T.table_runs("table3")
    with pytest.raises(AEAError, match="unknown dataset"):
        T.table_runs("table2", ["viper"])
    with pytest.raises(AEAError, match="not margin"):
        T.table_runs("fig6", values={"margin": [0.3]})


def test_metrics_paths_follow_the_run_layout(tmp_path):
    paths = T.metrics_paths("fig6", tmp_path, "smoke", seeds=[1, 0], datasets=["market1501"])
    assert len(paths) == 6 * 2
    expected = tmp_path / "smoke" / "market1501" / run_name("aea", {"erase_ratio": 5.0}) / "seed0" / "metrics.json"
    assert paths[0] == expected and paths[1].parent.name == "seed1"


def test_setting_key_round_trips():
    assert T.setting_key({}) == "default"
    assert T.setting_key({"alpha2": 1.5, "alpha1": 0.5}) == "alpha1=0.5;alpha2=1.5"
    assert T.setting_key({"erase_ratio": 20.0}) == T.setting_key({"erase_ratio": 20}) == "erase_ratio=20"
    assert T.parse_setting("alpha1=0.5;alpha2=1.5") == {"alpha1": 0.5, "alpha2": 1.5}
    assert T.parse_setting("erase_layer=conv2") == {"erase_layer": "conv2"}
    assert T.parse_setting("default") == {}


# ---------------------------------------------------------------- build_table / write_table


def test_build_table_mean_std_over_seeds():
    ms = [metrics("aea", "market1501", 1, 0.84, 0.70), metrics("aea", "market1501", 0, 0.80, 0.60),
          metrics("baseline1", "market1501", 0, 0.75, 0.55)]
    df = T.build_table("table2", ms)
    assert list(df.columns) == T.KEY_COLUMNS + T.STAT_COLUMNS
    aea = df[(df.method == "aea") & (df.metric == "rank1")].iloc[0]
    assert aea["mean"] == pytest.approx(82.0)
    assert aea["std"] == pytest.approx(math.sqrt(8.0))  # sample std of 80, 84
    assert (aea["min"], aea["max"], aea["n_seeds"], aea["seeds"]) == (pytest.approx(80.0), pytest.approx(84.0),
                                                                       2, "0;1")
    assert aea["profile"] == "smoke" and aea["setting"] == "default" and aea["run_name"] == "aea"
    non = df[(df.method == "aea") & (df.metric == "mAP_noninterp")].iloc[0]
    assert non["mean"] == pytest.approx(64.0)
    b1 = df[(df.method == "baseline1") & (df.metric == "mAP")].iloc[0]
    assert b1["mean"] == pytest.approx(55.0) and math.isnan(b1["std"]) and b1["n_seeds"] == 1
    assert list(df.method) == ["aea"] * 3 + ["baseline1"] * 3  # registry order, then metric order
    assert list(df.metric[:3]) == ["rank1", "mAP", "mAP_noninterp"]


def test_build_table_sweep_has_parameter_columns_in_order():
    ms = [metrics("aea", "cuhk03-labeled", 0, 0.5, 0.4, {"margin": m}) for m in (0.5, 0.35, 0.1)]
    ms.append(metrics("aea", "market1501", 0, 0.9, 0.8, {"margin": 0.3}))
    df = T.build_table("fig7", ms)
    assert "margin" in df.columns
    rank1 = df[df.metric == "rank1"]
    assert list(rank1.dataset) == ["market1501"] + ["cuhk03-labeled"] * 3
    assert list(rank1.margin) == [0.3, 0.1, 0.35, 0.5]
    assert list(rank1.setting) == ["margin=0.3", "margin=0.1", "margin=0.35", "margin=0.5"]
    t7 = T.build_table("table7", [metrics("aea", "market1501", 0, 0.9, 0.8, {"alpha1": 1.0, "alpha2": 0.5})])
    assert list(t7.metric) == ["rank1"] and (t7.alpha1.iloc[0], t7.alpha2.iloc[0]) == (1.0, 0.5)


def test_build_table_refuses_bad_inputs():
    with pytest.raises(AEAError, match="mixes runs of profiles paper, smoke"):
        T.build_table("table2", [metrics("aea", "market1501", 0, 0.8, 0.6),
                                 metrics("aea", "market1501", 1, 0.8, 0.6, profile="paper")])
    with pytest.raises(AEAError, match="not part of table2"):
        T.build_table("table2", [metrics("aea", "market1501", 0, 0.8, 0.6, {"erase_ratio": 20.0})])
    with pytest.raises(AEAError, match="not part of table6"):
        T.build_table("table6", [metrics("baseline1", "market1501", 0, 0.8, 0.6)])
    with pytest.raises(AEAError, match="seed"):
        T.build_table("table2", [metrics("aea", "market1501", 0, 0.8, 0.6)] * 2)
    with pytest.raises(AEAError, match="no runs"):
        T.build_table("table2", [])
    bad = metrics("aea", "market1501", 0, 0.8, 0.6)
    del bad["map_official"]
    with pytest.raises(AEAError, match="map_official"):
        T.build_table("table2", [bad])


def test_write_table_csv_and_provenance_sidecar(tmp_path):
    ms = [metrics("aea", "market1501", s, 0.8 + s / 30, 0.6) for s in (0, 1, 2)]
    ms[2]["git_commit"] = "beef"
    ms[2]["machine"]["threads"] = 2
    df = T.build_table("table2", ms)
    out = tmp_path / "out" / "table2.csv"
    T.write_table(df, out, T.collect_provenance("table2", ms, ["a", "b", "c"]))
    back = T.read_table(out)
    assert back["mean"].iloc[0] == df["mean"].iloc[0]  # full precision, not rounded
    assert list(back.columns) == list(df.columns) and back["seeds"].iloc[0] == "0;1;2"
    prov = json.loads((tmp_path / "out" / "table2.provenance.json").read_text())
    assert prov["table"] == "table2" and prov["profile"] == ["smoke"] and prov["n_runs"] == 3
    assert prov["seeds"] == [0, 1, 2] and prov["git_commits"] == ["beef", "c0ffee"] and prov["devices"] == ["cpu"]
    assert prov["config_hashes"] == ["hash0-aea", "hash1-aea", "hash2-aea"]
    assert prov["total_train_seconds"] == 30.0 and prov["total_eval_seconds"] == 7.5
    assert prov["runs"][0] == {"dataset": "market1501", "method": "aea", "run_name": "aea", "seed": 0,
                               "overrides": {}, "config_hash": "hash0-aea", "git_commit": "c0ffee",
                               "device": "cpu", "machine": MACHINE, "train_seconds": 10.0, "eval_seconds": 2.5,
                               "metrics_path": "a"}
    assert prov["machines"] == [MACHINE, {**MACHINE, "threads": 2}]  # each distinct machine once
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["table2.csv", "table2.provenance.json"]


# ---------------------------------------------------------------- paper references


def test_committed_paper_csvs_have_every_cell_and_only_known_values():
    known = {("market1501", "rank1"): 95.9, ("market1501", "mAP"): 87.9, ("cuhk03-labeled", "rank1"): 71.2,
             ("cuhk03-labeled", "mAP"): 67.6, ("cuhk03-detected", "rank1"): 67.8,
             ("cuhk03-detected", "mAP"): 65.5, ("dukemtmcreid", "rank1"): 88.4, ("dukemtmcreid", "mAP"): 75.5}
    for name in T.TABLES:
        paper = T.read_paper(PAPER_DIR, name)
        skeleton = T.paper_skeleton(name)
        assert list(paper.columns) == list(skeleton.columns)
        assert paper[T.KEY_COLUMNS].values.tolist() == skeleton[T.KEY_COLUMNS].values.tolist()
        for r in paper.to_dict("records"):
            if name in ("table2", "table6") and r["method"] == "aea":
                assert r["value"] == known[(r["dataset"], r["metric"])]
                assert r["source"] == T.PAPER_TEXT_SOURCE
            else:
                assert math.isnan(r["value"]), (name, r)  # never inferred, e.g. table7 at a1 = a2 = 1
    peers = T.read_peers(PAPER_DIR, "table6")
    assert len(peers) == 8 and peers["description"].str.contains("not an AEA-paper value").all()
    assert len(T.read_peers(PAPER_DIR, "table2")) == 0


def test_read_paper_refuses_broken_files(tmp_path):
    with pytest.raises(AEAError, match="missing"):
        T.read_paper(tmp_path, "table2")
    text = (PAPER_DIR / "table2.csv").read_text()
    (tmp_path / "table2.csv").write_text(text.replace("95.9", "95,9", 1))
    with pytest.raises(AEAError, match="quote fields"):
        T.read_paper(tmp_path, "table2")
    (tmp_path / "table2.csv").write_text(text.replace("95.9", '"95,9"', 1))
    with pytest.raises(AEAError, match="'95,9' .row 2. is not a number"):
        T.read_paper(tmp_path, "table2")
    (tmp_path / "table2.csv").write_text(text + text.splitlines()[1] + "\n")
    with pytest.raises(AEAError, match="twice"):
        T.read_paper(tmp_path, "table2")


# ---------------------------------------------------------------- diff


def _paper(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([{"table": "table2", "method": m, "dataset": d, "setting": "default", "metric": k,
                          "value": v, "source": "test"} for m, d, k, v in rows])


def test_diff_delta_spread_unknown_and_missing():
    ms = [metrics("aea", "market1501", 0, 0.950, 0.870), metrics("aea", "market1501", 1, 0.960, 0.880),
          metrics("baseline1", "market1501", 0, 0.90, 0.80), metrics("baseline2", "market1501", 0, 0.9, 0.8)]
    ours = T.build_table("table2", ms)
    paper = _paper([("aea", "market1501", "rank1", 95.9), ("aea", "market1501", "mAP", 89.0),
                    ("baseline1", "market1501", "rank1", 91.0), ("baseline1", "market1501", "mAP", math.nan),
                    ("aea", "dukemtmcreid", "rank1", 88.4)])
    diff = T.diff_table(ours, paper)
    cell = {(r["method"], r["dataset"], r["metric"]): r for r in diff.to_dict("records")}
    aea_r1 = cell[("aea", "market1501", "rank1")]
    assert aea_r1["ours"] == pytest.approx(95.5) and aea_r1["delta"] == pytest.approx(-0.4)
    assert aea_r1["within_spread"] == "yes" and aea_r1["n_seeds"] == 2 and aea_r1["seeds"] == "0;1"
    assert cell[("aea", "market1501", "mAP")]["within_spread"] == "no"       # 89.0 outside 87.0..88.0
    assert cell[("baseline1", "market1501", "rank1")]["within_spread"] == "n/a (1 seed)"
    assert cell[("baseline1", "market1501", "rank1")]["delta"] == pytest.approx(-1.0)
    unknown = cell[("baseline1", "market1501", "mAP")]
    assert unknown["within_spread"] == "paper value unknown" and math.isnan(unknown["delta"])
    missing = cell[("aea", "dukemtmcreid", "rank1")]
    assert missing["within_spread"] == "n/a (run missing)" and math.isnan(missing["ours"])
    # our cells the paper CSV does not list appear with the paper value unknown; mAP_noninterp is not diffed
    assert cell[("baseline2", "market1501", "rank1")]["within_spread"] == "paper value unknown"
    assert "mAP_noninterp" not in set(diff.metric)
    assert list(diff.profile.unique()) == ["smoke"]


def test_filled_paper_cell_is_picked_up(tmp_path):
    ours = T.build_table("table2", [metrics("baseline1", "market1501", s, 0.80 + s / 100, 0.6) for s in (0, 1)])
    shutil.copy(PAPER_DIR / "table2.csv", tmp_path / "table2.csv")
    before = T.diff_table(ours, T.read_paper(tmp_path, "table2"))
    row = before[(before.method == "baseline1") & (before.dataset == "market1501") & (before.metric == "rank1")]
    assert row.within_spread.iloc[0] == "paper value unknown"
    # a user fills the empty cell from the PDF
    text = (tmp_path / "table2.csv").read_text().replace(
        "table2,baseline1,market1501,default,rank1,,", "table2,baseline1,market1501,default,rank1,80.7,")
    (tmp_path / "table2.csv").write_text(text)
    after = T.diff_table(ours, T.read_paper(tmp_path, "table2"))
    row = after[(after.method == "baseline1") & (after.dataset == "market1501") & (after.metric == "rank1")]
    assert row.paper.iloc[0] == 80.7 and row.delta.iloc[0] == pytest.approx(0.5 - 0.7)
    assert row.within_spread.iloc[0] == "yes"


# ---------------------------------------------------------------- claims


def _table2_score(order: dict):
    return lambda m, ds, ov: (order[m], order[m] - 0.1)


GOOD_T2 = {"aea": 0.9, "baseline1": 0.8, "baseline2": 0.7, "baseline3": 0.6, "baseline4": 0.65, "noerase": 0.85}
GOOD_T6 = {"aea": 0.9, "reda": 0.8, "aos": 0.85, "noerase": 0.85}


def test_table2_claims_hold_fail_and_not_evaluable():
    assert status("table2", full_cells("table2", _table2_score(GOOD_T2))) == ["holds"] * 4
    bad = full_cells("table2", _table2_score({"aea": 0.75, "baseline1": 0.7, "baseline2": 0.8,
                                                "baseline3": 0.66, "baseline4": 0.65, "noerase": 0.8}))
    assert status("table2", bad) == ["fails"] * 4
    # one metric on one dataset is enough to fail "in all settings"
    cells = full_cells("table2", _table2_score(GOOD_T2))
    cells[("aea", "dukemtmcreid", ())] = (0.95, 0.65)
    result = claims_of("table2", cells)
    assert list(result.drop_duplicates("claim").verdict) == ["fails", "holds", "holds", "fails"]
    row = result[(result.dataset == "dukemtmcreid") & (result.metric == "mAP") & (result.loser == "Baseline 1")]
    assert row.status.item() == "fails" and row["diff"].item() == pytest.approx(-5.0)
    assert (row.low.item(), row.high.item()) == (pytest.approx(-5.0), pytest.approx(-5.0))  # no noise at all
    # missing runs: not evaluable (no counterexample among what exists)
    partial = {k: v for k, v in full_cells("table2", _table2_score(GOOD_T2)).items() if k[1] != "dukemtmcreid"}
    result = claims_of("table2", partial)
    assert list(result.drop_duplicates("claim").verdict) == ["not evaluable"] * 4
    assert "not evaluable (missing runs)" in set(result.status)


def test_one_seed_or_equal_runs_are_inconclusive():
    cells = full_cells("table2", _table2_score(GOOD_T2))
    assert status("table2", cells, seeds=(0,)) == ["inconclusive"] * 4  # one seed never decides
    result = claims_of("table2", cells, seeds=(0,))
    assert "fewer than 2 seeds never decide" in result.detail.iloc[0]
    tie = full_cells("table6", _table2_score({"aea": 0.85, "reda": 0.8, "aos": 0.85, "noerase": 0.85}))
    assert status("table6", tie) == ["inconclusive"] * 2  # AEA = AOS, AEA = no erasing: the interval is [0, 0]


def test_claim_decided_by_query_noise_and_seed_spread():
    """Real per-query noise: a small consistent gain holds, the same mean gain with seeds disagreeing does not."""
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 1.0, 300)

    def run(method, seed, shift):
        m = metrics(method, "market1501", seed, 0.5, 0.5)
        m["per_query"] = {"query": list(range(300)), "ap_official": list(np.clip(base + shift, 0, 1)),
                          "ap_noninterp": list(base), "first_match_rank": [1] * 300}
        return m

    def verdict(shifts):
        ms = [run("aea", s, d) for s, d in enumerate(shifts)] + [run("reda", s, 0.0) for s in range(len(shifts))]
        cells = T.group_runs("table6", ms)
        comp = T.Comparison(("aea", "market1501", "default"), ("reda", "market1501", "default"), "mAP")
        from aea.tables.claims import compare_runs
        return compare_runs(cells[comp.winner], cells[comp.loser], "mAP")[0]

    steady = verdict([0.01, 0.012, 0.011, 0.009])
    spread = verdict([0.10, -0.08, 0.05, -0.03])
    assert steady.status == "holds" and steady.n_seeds == 4
    assert spread.status == "inconclusive" and spread.low < 0 < spread.high


def test_inconclusive_comparisons_carry_the_seeds_they_need():
    """AEA - REDA in mAP on Market-1501 per seed: +2, -1, +5 points (mean 2, SD 3): inconclusive at 3 seeds,
    80% power at effect 2/3 needs 20 seeds (one-sample t, two-sided 5%); AEA - AOS there: -3, -6, 0 (effect 1:
    10 seeds). The claim's detail names the most any comparison needs and the t a family-level fails needs."""
    from aea import stats as S

    cells = full_cells("table6", _table2_score(GOOD_T6))
    runs = runs_of(cells, seeds=(0, 1, 2))
    for m in runs:
        if (m["method"], m["dataset"]) == ("aea", "market1501"):
            ap = 0.7 + {0: 0.02, 1: -0.01, 2: 0.05}[m["seed"]]
            m["per_query"] = {**m["per_query"], "ap_official": [ap] * 100}
    result = T.evaluate_claims(T.group_runs("table6", runs), T.CLAIMS["table6"])
    row = result[(result.loser == "REDA") & (result.dataset == "market1501") & (result.metric == "mAP")].iloc[0]
    assert row.status == "inconclusive" and row["diff"] == pytest.approx(2.0) and row.seed_sd == pytest.approx(3.0)
    assert row.seeds_needed == S.seeds_needed(2.0, 3.0) == 20
    aos = result[(result.loser == "AOS") & (result.dataset == "market1501") & (result.metric == "mAP")].iloc[0]
    assert aos.status == "inconclusive" and aos["diff"] == pytest.approx(-3.0) and aos.seeds_needed == 10
    decided = result[result.status == "holds"]
    # 14 of AEA vs REDA and AOS, 7 of AEA vs no erasing (its market mAP is -3, -6, 0 as AOS's): only inconclusive
    # comparisons need seeds
    assert len(decided) == 14 + 7 and decided.seeds_needed.isna().all()
    detail = result.detail.iloc[0]
    assert "up to 20" in detail and "a family-level fails needs |t| > 17.8 (3 seeds, 16 comparisons)" in detail
    from aea.tables.report import claims_markdown

    assert "\n".join(claims_markdown(result)).count("| inconclusive | 20 |") == 1


def test_status_changes_between_two_claims_tables_by_kind():
    """The same comparisons decided twice (another machine or thread count): same / decided <-> inconclusive /
    holds <-> fails (a defect)."""
    from aea.tables.claims import status_changes

    a = claims_of("table6", full_cells("table6", _table2_score(GOOD_T6)))
    b = a.copy()
    b.loc[0, "status"], b.loc[1, "status"], b.loc[2, "status"] = "inconclusive", "fails", "holds"
    changes = status_changes(a, b).set_index(["loser", "dataset", "metric"])
    assert len(changes) == len(a) == 16 + 8
    first = [tuple(a.loc[i, ["loser", "dataset", "metric"]]) for i in range(3)]
    assert list(changes.loc[first, "change"]) == ["decided <-> inconclusive", "holds <-> fails", "same"]
    assert (changes.drop(index=first).change == "same").all()


def test_table6_claim():
    good = full_cells("table6", _table2_score(GOOD_T6))
    assert status("table6", good) == ["holds", "holds"]
    no_aos = {k: v for k, v in good.items() if k[0] != "aos"}
    assert status("table6", no_aos) == ["not evaluable", "holds"]  # the harness's claim needs no AOS run
    claims = claims_of("table6", good)
    assert list(claims.drop_duplicates("claim").claimed_by) == ["paper", "harness"]
    diff = T.diff_table(T.build_table("table6", runs_of(good)), T.read_paper(PAPER_DIR, "table6"))
    control = diff[diff.method == "noerase"]
    assert len(control) == 8 and set(control.within_spread) == {"not in the paper"}
    assert set(control.source) == {"not in the paper: the harness's control"} and control.paper.isna().all()
    md = T.diff_markdown(diff, claims)
    assert ("| Two networks, no erasing | Market-1501 | default | mAP | not in the paper | 75.0 ± 0.0 (n=2) |  "
            "| not in the paper |") in md
    assert md.count("*(the harness's claim, not the paper's)*") == 1


def _peak(param: str, best_by_dataset: dict, scale: float = 100):
    """score falls with the distance of ``param`` from the dataset's best value."""
    return lambda m, ds, ov: (0.9 - abs(ov[param] - best_by_dataset[ds]) / scale,
                              0.8 - abs(ov[param] - best_by_dataset[ds]) / scale)


def test_alpha_grid_claims():
    def score(a1: float, a2: float):
        return lambda m, ds, ov: (0.9 - abs(ov["alpha1"] - a1) / 10 - abs(ov["alpha2"] - a2) / 10,
                                  0.8 - abs(ov["alpha1"] - a1) / 10 - abs(ov["alpha2"] - a2) / 10)
    for name in ("table7", "table8"):
        assert status(name, full_cells(name, score(1.0, 1.0))) == ["holds"]
        assert status(name, full_cells(name, score(1.0, 1.5))) == ["fails"]
        # a profile sweeping fewer values: judged on what was run, the gaps named
        cells = full_cells(name, score(1.0, 1.0))
        del cells[("aea", "market1501", (("alpha1", 2.0), ("alpha2", 2.0)))]
        result = claims_of(name, cells)
        assert list(result.drop_duplicates("claim").verdict) == ["holds"] and len(result) == 23
        assert result.detail.iloc[0].endswith("paper grid not fully run; missing: market1501 alpha1=2;alpha2=2")
        # the claimed best cell missing: not evaluable
        del cells[("aea", "market1501", (("alpha1", 1.0), ("alpha2", 1.0)))]
        assert status(name, cells) == ["not evaluable"]


def test_layer_claim():
    rank = {"conv1": 1, "conv2": 5, "conv3": 4, "conv4": 3, "conv5": 2}
    score = lambda m, ds, ov: (0.3 + rank[ov["erase_layer"]] / 10, 0.2 + rank[ov["erase_layer"]] / 10)  # noqa: E731
    assert status("table9", full_cells("table9", score)) == ["holds"]
    rank["conv3"] = 5
    assert status("table9", full_cells("table9", score)) == ["inconclusive"]  # a tie decides nothing
    rank["conv3"] = 6
    result = claims_of("table9", full_cells("table9", score))
    assert list(result.drop_duplicates("claim").verdict) == ["fails"]
    row = result[(result.loser == "AEA (erase_layer=conv3)") & (result.metric == "rank1")]
    assert row.status.item() == "fails" and row["diff"].item() == pytest.approx(-10.0)


def test_ratio_and_margin_claims():
    paper_r = {"market1501": 10.0, "dukemtmcreid": 10.0, "cuhk03-labeled": 20.0, "cuhk03-detected": 20.0}
    assert status("fig6", full_cells("fig6", _peak("erase_ratio", paper_r))) == ["holds"] * 2
    wrong = dict(paper_r, **{"cuhk03-detected": 15.0})
    assert status("fig6", full_cells("fig6", _peak("erase_ratio", wrong))) == ["holds", "fails"]
    paper_m = {"market1501": 0.3, "dukemtmcreid": 0.3, "cuhk03-labeled": 0.35, "cuhk03-detected": 0.35}
    assert status("fig7", full_cells("fig7", _peak("margin", paper_m, 1))) == ["holds"] * 2
    wrong = dict(paper_m, market1501=0.5)
    assert status("fig7", full_cells("fig7", _peak("margin", wrong, 1))) == ["fails", "holds"]
    only_market = {k: v for k, v in full_cells("fig7", _peak("margin", paper_m, 1)).items() if k[1] == "market1501"}
    assert status("fig7", only_market) == ["not evaluable"] * 2  # no Duke, no CUHK03
    # a single setting on a dataset cannot show which is best
    lone = {("aea", "market1501", (("erase_ratio", 10.0),)): (0.9, 0.8),
            ("aea", "dukemtmcreid", (("erase_ratio", 10.0),)): (0.9, 0.8),
            ("aea", "dukemtmcreid", (("erase_ratio", 30.0),)): (0.8, 0.7)}
    result = claims_of("fig6", lone)
    assert result.verdict.iloc[0] == "not evaluable"
    assert "AEA (another setting)" in set(result.loser)


def test_runs_without_per_query_results_are_not_evaluable():
    ms = runs_of(full_cells("table6", _table2_score(GOOD_T6)))
    for m in ms:
        m.pop("per_query")
    result = T.evaluate_claims(T.group_runs("table6", ms), T.CLAIMS["table6"])
    assert result.verdict.iloc[0] == "not evaluable" and "re-run `aea evaluate`" in result.status.iloc[0]


# ---------------------------------------------------------------- reports


def test_write_diff_markdown_has_header_cells_claims_and_context(tmp_path):
    cells = full_cells("table6", _table2_score(GOOD_T6))
    ours = table_of("table6", cells, seeds=(0, 1))
    diff, claims = T.diff_table(ours, T.read_paper(PAPER_DIR, "table6")), claims_of("table6", cells)
    T.write_diff(diff, claims, tmp_path / "table6.diff.csv", tmp_path / "table6.diff.md",
                 T.read_peers(PAPER_DIR, "table6"))
    md = (tmp_path / "table6.diff.md").read_text()
    assert "Profile: `smoke`; seeds: 0, 1." in md
    assert "not expected to match the paper's numbers" in md
    assert "| AEA | Market-1501 | default | rank1 | 95.9 | 90.0 ± 0.0 (n=2) | -5.9 | no |" in md
    assert ("| REDA | Market-1501 | default | rank1 | paper value unknown | 80.0 ± 0.0 (n=2) |  "
            "| paper value unknown |") in md
    assert "| AOS | Market-1501 | rank1 | 86.50 | AOS (Huang et al., CVPR 2018)" in md  # context, labelled
    assert "### holds: AEA beats REDA and AOS on every dataset, in rank-1 and in mAP" in md
    assert "16 comparisons: 16 hold, 0 fail at 95% (0 after Bonferroni), 0 inconclusive" in md
    assert "| AEA | REDA | Market-1501 | mAP | +10.0 [+10.0, +10.0] (2) | holds |" in md  # every AP 10 points up
    # rank-1: 10% more first-rank hits at both seeds; only the per-seed means enter the t interval
    assert "| AEA | REDA | Market-1501 | rank1 | +10.0 [+10.0, +10.0] (2) | holds |  |" in md
    assert "## Context: peers' published numbers" in md and "58.14" in md
    back = T.read_table(tmp_path / "table6.diff.csv")
    aea = back[(back.method == "aea") & (back.dataset == "market1501") & (back.metric == "rank1")].iloc[0]
    assert aea.paper == 95.9 and aea.ours == pytest.approx(90.0) and aea.within_spread == "no"
    # peers' numbers are context only: never the paper value of a cell
    aos_market = back[(back.method == "aos") & (back.dataset == "market1501") & (back.metric == "rank1")]
    assert math.isnan(aos_market.paper.iloc[0])


def test_paper_profile_header_drops_the_caveat():
    ms = [metrics("aea", "market1501", 0, 0.95, 0.88, profile="paper")]
    diff = T.diff_table(T.build_table("table2", ms), T.read_paper(PAPER_DIR, "table2"))
    claims = T.evaluate_claims(T.group_runs("table2", ms), T.CLAIMS["table2"])
    md = T.diff_markdown(diff, claims)
    assert "Profile: `paper`; seeds: 0." in md and "not expected to match" not in md
    assert md.count("### not evaluable") == 4


def test_make_table_writes_everything_for_a_figure(tmp_path):
    paths = []
    for r in T.table_runs("fig6"):
        for s in (0, 1):
            p = tmp_path / "runs" / r.dataset / run_name(r.method, r.overrides) / f"seed{s}" / "metrics.json"
            p.parent.mkdir(parents=True)
            p.write_text(json.dumps(metrics(r.method, r.dataset, s, 0.5 + s / 100, 0.4, r.overrides)))
            paths.append(p)
    out = tmp_path / "out"
    T.make_table("fig6", paths, out, PAPER_DIR)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in T.table_files("fig6", out)) == [
        "fig6.claims.csv", "fig6.csv", "fig6.diff.csv", "fig6.diff.md", "fig6.png", "fig6.provenance.json"]
    table = T.read_table(out / "fig6.csv")
    assert len(table) == 24 * 3 and table["n_seeds"].eq(2).all()
    assert json.loads((out / "fig6.provenance.json").read_text())["n_runs"] == 48
    with pytest.raises(AEAError, match="missing"):
        T.make_table("fig6", [tmp_path / "nope" / "metrics.json"], out, PAPER_DIR)

    # A user fills one paper cell from the PDF: `aea compare` re-diffs the written table without rerunning.
    before = (out / "fig6.diff.csv").read_text()
    paper_dir = tmp_path / "paper"
    shutil.copytree(PAPER_DIR, paper_dir)
    paper = pd.read_csv(paper_dir / "fig6.csv", dtype=str, keep_default_na=False)
    cell = (paper.dataset == "market1501") & (paper.setting == "erase_ratio=10") & (paper.metric == "rank1")
    assert cell.sum() == 1 and paper.loc[cell, "value"].item() == ""
    paper.loc[cell, "value"] = "50.5"
    paper.to_csv(paper_dir / "fig6.csv", index=False)
    T.compare_table("fig6", out, paper_dir)
    diff = T.read_table(out / "fig6.diff.csv")
    row = diff[(diff.dataset == "market1501") & (diff.setting == "erase_ratio=10") & (diff.metric == "rank1")]
    assert row["paper"].item() == pytest.approx(50.5) and row["delta"].item() == pytest.approx(0.0)
    assert (out / "fig6.diff.csv").read_text() != before


def test_default_run_fills_the_sweep_cell_of_its_resolved_value():
    """Canonical run names drop overrides equal to the default: the plain AEA run is Market's R = 10 point."""
    default = metrics("aea", "market1501", 0, 0.9, 0.8)
    swept = metrics("aea", "market1501", 0, 0.7, 0.6, {"erase_ratio": 20.0})
    table = T.build_table("fig6", [default, swept])
    rank1 = table[table.metric == "rank1"].set_index("setting")["mean"]
    assert rank1["erase_ratio=10"] == pytest.approx(90.0) and rank1["erase_ratio=20"] == pytest.approx(70.0)
    with pytest.raises(AEAError, match="not part of fig6"):
        T.build_table("fig6", [metrics("aea", "market1501", 0, 0.9, 0.8, {"margin": 0.4})])


def test_metrics_paths_map_default_sweep_points_to_the_default_run(tmp_path):
    def canonical(dataset, overrides):
        return {k: v for k, v in overrides.items() if not (k == "erase_ratio" and v == 10.0)}

    paths = T.metrics_paths("fig6", tmp_path, "smoke", seeds=[0], datasets=["market1501"],
                            values={"erase_ratio": [5, 10, 20]}, canonical=canonical)
    assert [p.parent.parent.name for p in paths] == ["aea-erase_ratio_5", "aea", "aea-erase_ratio_20"]
    table7 = T.metrics_paths("table7", tmp_path, "smoke", seeds=[0], canonical=lambda d, o: {})
    assert len(table7) == 1  # every grid point canonicalised to the same run: listed once


@pytest.mark.parametrize("column,bad,fix", [("method", "Baseline1", "baseline1"), ("metric", "map", "mAP"),
                                             ("dataset", "market", "market1501"), ("setting", "R=10", "default")])
def test_misspelt_paper_rows_are_refused_naming_the_choices(tmp_path, column, bad, fix):
    """A reference row the diff could never match is an error, not a silently ignored cell."""
    shutil.copy(PAPER_DIR / "table2.csv", tmp_path / "table2.csv")
    paper = pd.read_csv(tmp_path / "table2.csv", dtype=str, keep_default_na=False)
    paper.loc[3, column] = bad
    paper.to_csv(tmp_path / "table2.csv", index=False)
    with pytest.raises(AEAError, match=rf"row 5: {column} '{bad}' is not .*{fix}.*fix the spelling"):
        T.read_paper(tmp_path, "table2")


def test_interpretations_table_runs_each_choice_both_ways(tmp_path):
    """Constructed runs: joint triplet 5 points below per-network AEA, which beats Baseline 1 by 3 points; the
    test-feature reading comes from each AEA run's ``alternatives``; the paper profile's reading is named."""
    from aea.tables import interpretations as I

    score = {("aea", ()): 0.80, ("aea", (("triplet_mode", "joint"),)): 0.75, ("baseline1", ()): 0.77}
    ms = []
    for r in T.interpretation_runs(["market1501"]):
        for seed in (0, 1):
            value = score.get((r.method, tuple(sorted(r.overrides.items()))), 0.5)
            m = metrics(r.method, r.dataset, seed, value, value, r.overrides)
            m["config"].update({"triplet_mode": "per_network", "warmup_epochs": 2, "peer_form": "two_networks",
                                "test_feature_norm": "per_half", **r.overrides})
            if r.method == "aea" and not r.overrides:
                m["alternatives"] = {"test_feature_norm=concat": {"per_query": per_query(0.70, 0.70)}}
            ms.append(m)
    paper_values = {"triplet_mode": "per_network", "warmup_epochs": 10, "peer_form": "two_networks",
                    "test_feature_norm": "per_half"}
    table = I.build_interpretations(ms, paper_values)
    assert set(table.choice) == {c.name for c in I.CHOICES}

    def row(key, comparison, reading, metric="mAP"):
        hit = table[(table.key == key) & (table.comparison == comparison) & (table.reading.str.startswith(reading))
                    & (table.metric == metric)]
        assert len(hit) == 1, (key, comparison, reading)
        return hit.iloc[0]

    effect = row("triplet_mode", "AEA: B - A", "triplet_mode=joint")
    assert effect["diff"] == pytest.approx(-5.0) and effect.status == "fails"
    assert effect.paper_profile == "triplet_mode=per_network"
    assert row("triplet_mode", "AEA - Baseline 1", "A: triplet_mode=per_network")["diff"] == pytest.approx(3.0)
    joint_claim = row("triplet_mode", "AEA - Baseline 1", "B: triplet_mode=joint")
    assert joint_claim["diff"] == pytest.approx(-2.0) and joint_claim.status == "fails"
    norm = row("test_feature_norm", "AEA - Baseline 1", "B: test_feature_norm=concat")
    assert norm["diff"] == pytest.approx(70.0 - 77.0)
    assert row("warmup_epochs", "REDA: B - A", "warmup_epochs=0")["diff"] == pytest.approx(0.0)
    assert row("warmup_epochs", "REDA: B - A", "warmup_epochs=0").paper_profile == "warmup_epochs=10"
    paths = []
    for i, m in enumerate(ms):
        p = tmp_path / "runs" / f"{i}.json"
        p.parent.mkdir(exist_ok=True)
        p.write_text(json.dumps(m))
        paths.append(p)
    I.make_interpretations(paths, tmp_path / "out", paper_values)
    md = (tmp_path / "out" / "interpretations.diff.md").read_text()
    assert "## triplet: one per network vs one over both networks" in md
    assert ("| AEA: B - A | triplet_mode=joint - triplet_mode=per_network | Market-1501 | mAP "
            "| -5.0 [-5.0, -5.0] (2) | fails |") in md
    assert T.read_table(tmp_path / "out" / "interpretations.csv").shape[0] == len(table)


def test_paper_template_lists_every_cell_of_the_committed_reference_and_never_overwrites(tmp_path, capsys):
    """`aea paper-template NAME` (a table added to the registry): the committed references are such templates with
    the paper's known values filled in, so the template has their cells in their order, every value empty."""
    from aea.cli import main

    for name in T.TABLES:
        assert main(["paper-template", name, "--paper-dir", str(tmp_path)]) == 0
        template = pd.read_csv(tmp_path / f"{name}.csv", keep_default_na=False)
        committed = pd.read_csv(PAPER_DIR / f"{name}.csv", keep_default_na=False)
        assert list(template.columns) == list(committed.columns)
        key = ["table", "method", "dataset", "setting", "metric"]
        assert template[key].equals(committed[key]) and (template.value == "").all()
    assert main(["paper-template", "table2", "--paper-dir", str(tmp_path)]) == 2
    assert "exists; fill its empty values from the paper" in capsys.readouterr().err
