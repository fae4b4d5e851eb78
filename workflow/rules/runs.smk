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
