# One job per (dataset, run name, seed), or per (dataset, run name) for all the profile's seeds in turn where the
# profile groups them (group_seeds: smoke and tiny, whose runs take seconds; one process start, ~4 s, for all):
# training, then evaluation into metrics.json. The run name encodes the method and its overrides
# (aea.config.run_name), so any run can also be asked for by path (a grouped job makes every seed of it), e.g.
#   snakemake --cores all results/runs/smoke/market1501/aea-erase_ratio_15/seed0/metrics.json
# The hash of the run's resolved config is a param: an edited profile value reruns the runs it changes, and
# --replace-changed makes `aea train` start such a run afresh instead of refusing its directory.

TRAIN_THREADS = config["train_threads"]
GPUS = config["gpus_per_run"]


# AEA and the Baseline-1 run written from its basic network by one process (rule train_aea_and_baseline1): one
# start-up (torch import, data loading, about 4 s) instead of two, where every dataset of the profile reads
# Baseline 1 off AEA (the default reading). Then `train` does not make the plain `aea` and `baseline1` runs: each
# output has exactly one rule. (Not a ruleorder: a SLURM job runs Snakemake again with --allowed-rules set to its
# own rule, so a Baseline-4 job under `train` saw AEA's outputs as made by another rule's code and params, retrained
# AEA inside the job and deleted AEA's outputs when that failed.)
READ_OFF = all(reads_off_baseline1(d) for d in PROFILE.datasets)


# Two rules of one body, so that each grouped job's outputs are its runs' seeds: `train` for a method's default run
# (the profile's seeds: Tables 2 and 6), `train_sweep` for a run with overrides (its sweep_seeds: the sweeps and the
# interpretations' other readings). Each output has exactly one rule.
PLAIN_RUN, SWEEP_RUN = r"[a-z0-9]+", r"[a-z0-9]+(-[a-z0-9_.]+)+"  # RUN_NAME_PATTERN without, with overrides
for rule_name, run_pattern, rule_seeds in (("train", PLAIN_RUN, PROFILE.seeds),
                                           ("train_sweep", SWEEP_RUN, PROFILE.sweep_seeds)):

    rule:
        name:
            rule_name
        wildcard_constraints:
            run=(r"(?!(?:aea|baseline1)/)" if READ_OFF else "") + run_pattern,
        input:
            unpack(train_inputs),
        output:
            model=per_seed(run_file("{dataset}", "{run}", MODEL_FILE), rule_seeds),
            metrics=per_seed(run_file("{dataset}", "{run}", METRICS_FILE), rule_seeds),
        log:
            job_log("{run}"),
        params:
            # How the profile is found (a name or a path) is not what a run is, its resolved config is (config_hash):
            # Snakemake does not rerun on params computed from the input, so a copied profile reruns only what it
            # changes.
            profile=lambda wildcards, input: PROFILE_ARG,
            seeds=lambda w: ",".join(map(str, job_seeds(w))),
            args=train_args,
            out=lambda w: job_run_dir(w, w.run),
            config_hash=run_config_hash,
            wait=lock_wait,
        threads: TRAIN_THREADS
        resources:
            gpu=GPUS,
        conda:
            ENV
        shell:
            # {log}: this attempt's output (Snakemake empties it at each attempt); aea train appends every attempt
            # at a run, each under its own header, to the run's train.log
            "aea train --profile {params.profile:q} --dataset {wildcards.dataset:q} --seed {params.seeds} --evaluate"
            " --replace-changed --out {params.out:q} --threads {threads} --gpus {resources.gpu}"
            " --wait-lock {params.wait} {params.args:q} > {log:q} 2>&1 || (tail -n 1 {log:q} >&2; exit 1)"


if READ_OFF:

    # For the plain run names; a Baseline 1 with overrides is written by `train` from its AEA run (--basic-of).
    rule train_aea_and_baseline1:
        input:
            unpack(lambda w: train_inputs(of_run(w, "aea"))),
        output:
            model=per_seed(run_file("{dataset}", "aea", MODEL_FILE), PROFILE.seeds),
            metrics=per_seed(run_file("{dataset}", "aea", METRICS_FILE), PROFILE.seeds),
            baseline1_model=per_seed(run_file("{dataset}", "baseline1", MODEL_FILE), PROFILE.seeds),
            baseline1_metrics=per_seed(run_file("{dataset}", "baseline1", METRICS_FILE), PROFILE.seeds),
        log:
            aea=job_log("aea"),
            baseline1=job_log("baseline1"),
        params:
            profile=lambda wildcards, input: PROFILE_ARG,
            seeds=lambda w: ",".join(map(str, job_seeds(of_run(w, "aea")))),
            out=lambda w: job_run_dir(of_run(w, "aea"), "aea"),
            baseline1=lambda w: job_run_dir(of_run(w, "baseline1"), "baseline1"),
            config_hash=lambda w: [run_config_hash(of_run(w, run)) for run in ("aea", "baseline1")],
            wait=lock_wait,
        threads: TRAIN_THREADS
        # first: Baselines 3/4, REDA and AOS wait for its Baseline 1; the jobs that need nothing (Baseline 2) fill
        # the cores meanwhile, so a grouped job of all seeds does not run alone at the end
        priority: 1
        resources:
            gpu=GPUS,
        conda:
            ENV
        shell:
            "aea train --profile {params.profile:q} --dataset {wildcards.dataset:q} --seed {params.seeds} --evaluate"
            " --replace-changed --out {params.out:q} --write-baseline1 {params.baseline1:q} --threads {threads}"
            " --gpus {resources.gpu} --wait-lock {params.wait} --method aea > {log.aea:q} 2>&1"
            " && cp {log.aea:q} {log.baseline1:q} || (tail -n 1 {log.aea:q} >&2; exit 1)"
