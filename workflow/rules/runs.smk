# One job per (dataset, run name, seed): training, then evaluation into metrics.json. The run name encodes the method and
# its overrides (aea.config.run_name), so any run can also be asked for by path, e.g.
#   snakemake --cores all results/runs/smoke/market1501/aea-erase_ratio_15/seed0/metrics.json
# The hash of the run's resolved config is a param: an edited profile value reruns the runs it changes, and
# --replace-changed makes `aea train` start such a run afresh instead of refusing its directory.

TRAIN_THREADS = config["train_threads"]
GPUS = config["gpus_per_run"]


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"{RUNS}/{{dataset}}/{{run}}/seed{{seed}}/model.pt",
        metrics=f"{RUNS}/{{dataset}}/{{run}}/seed{{seed}}/metrics.json",
    log:
        f"{RUNS}/{{dataset}}/{{run}}/seed{{seed}}/train.log",
    params:
        # How the profile is found (a name or a path) is not what a run is, its resolved config is (config_hash):
        # Snakemake does not rerun on params computed from the input, so a copied profile reruns only what it changes.
        profile=lambda wildcards, input: PROFILE_ARG,
        args=train_args,
        out=lambda w: run_dir(w.dataset, w.run, w.seed),
        config_hash=run_config_hash,
    threads: TRAIN_THREADS
    resources:
        gpu=GPUS,
    conda:
        ENV
    shell:
        "aea train --profile {params.profile:q} --dataset {wildcards.dataset:q} --seed {wildcards.seed} --evaluate"
        " --replace-changed --out {params.out:q} --threads {threads} {params.args:q}"
        " > {log:q} 2>&1 || (tail -n 1 {log:q} >&2; exit 1)"


# AEA and the Baseline-1 run written from its basic network (share_basic, aea.methods.Method.read_off) by one
# process: one start-up (torch import, data loading, about 4 s) instead of two. For the plain run names; a
# Baseline 1 with overrides is written by `train` from its AEA run (--basic-of).
READ_OFF_DATASETS = [d for d in PROFILE.datasets if get_method("baseline1").read_off(
    *(lambda c: (c.triplet_mode, c.share_basic))(resolve(PROFILE, d, "baseline1", {}, 0))) == "aea"]



if READ_OFF_DATASETS:

    ruleorder: train_aea_and_baseline1 > train

    rule train_aea_and_baseline1:
        wildcard_constraints:
            dataset="|".join(READ_OFF_DATASETS),
        input:
            unpack(lambda w: train_inputs(of_run(w, "aea"))),
        output:
            model=f"{RUNS}/{{dataset}}/aea/seed{{seed}}/model.pt",
            metrics=f"{RUNS}/{{dataset}}/aea/seed{{seed}}/metrics.json",
            baseline1_model=f"{RUNS}/{{dataset}}/baseline1/seed{{seed}}/model.pt",
            baseline1_metrics=f"{RUNS}/{{dataset}}/baseline1/seed{{seed}}/metrics.json",
        log:
            aea=f"{RUNS}/{{dataset}}/aea/seed{{seed}}/train.log",
            baseline1=f"{RUNS}/{{dataset}}/baseline1/seed{{seed}}/train.log",
        params:
            profile=lambda wildcards, input: PROFILE_ARG,
            out=lambda w: run_dir(w.dataset, "aea", w.seed),
            baseline1=lambda w: run_dir(w.dataset, "baseline1", w.seed),
            config_hash=lambda w: [run_config_hash(of_run(w, run)) for run in ("aea", "baseline1")],
        threads: TRAIN_THREADS
        resources:
            gpu=GPUS,
        conda:
            ENV
        shell:
            "aea train --profile {params.profile:q} --dataset {wildcards.dataset:q} --seed {wildcards.seed} --evaluate"
            " --replace-changed --out {params.out:q} --write-baseline1 {params.baseline1:q} --threads {threads}"
            " --method aea > {log.aea:q} 2>&1 && cp {log.aea:q} {log.baseline1:q} || (tail -n 1 {log.aea:q} >&2; exit 1)"
