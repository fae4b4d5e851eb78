# The mechanism experiment on generator version 3 (docs/mechanism.md, "Generator version 3", issue 23):
#   <out>/mechanism-v3/mechanism.csv + .md + .png + .units.csv (+ .provenance.json)
#       e.g. snakemake --cores 2 results/mechanism-v3/mechanism.csv
# Profile: aea/profiles/mechanism-v3.yaml (mechanism-v3-tiny.yaml when the workflow runs the tiny profile).
# Per generator seed one data job writes four data roots, <v3 data root>/<test set>-g<gen>/: p0 (training split
# and the unoccluded test set), upper-p0.2 and upper-p0.4 (the torso hidden with probability p), any-p1 (every
# test image hides one region; the per-region breakdown). The training split is byte-identical in all four.
# Runs: results/runs/<v3 profile>/redundant-g<gen>/<method>/seed<k>/, trained on p0 (metrics.json) and evaluated
# on the three other test sets (metrics-<test set>.json) by one job per unit (generator seed, training seed).
# Included by workflow/rules/mechanism.smk, after mechanism_v3_common.smk (its settings and helpers).

rule mechanism_v3_data:
    wildcard_constraints:
        **MECH3_WILDCARDS,
    output:
        f"{MECH3_DATA}/.aea/g{{gen}}.{MECH3_PROFILE.synthetic}.done",
    log:
        f"{MECH3_DATA}/.aea/g{{gen}}.log",
    params:
        roots=lambda w: [mechanism3_root(s, w.gen) for s in MECH3_SETS],
        sets=list(MECH3_SETS.values()),
        size=MECH3_PROFILE.synthetic,
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    script:
        "../scripts/make_mechanism_v3.py"


rule mechanism_v3_train:
    wildcard_constraints:
        **MECH3_WILDCARDS,
    input:
        unpack(mechanism3_train_inputs),
    output:
        model=f"{mechanism3_run('{gen}', '{method}', '{seed}')}/{MODEL_FILE}",
        metrics=mechanism3_metrics("{gen}", "{method}", "{seed}", "p0"),
    log:
        f"{mechanism3_run('{gen}', '{method}', '{seed}')}/job.log",
    params:
        profile=MECH3_PROFILE.name,
        root=lambda w: mechanism3_root("p0", w.gen),
        out=lambda w: mechanism3_run(w.gen, w.method, w.seed),
        config_hash=lambda w: mechanism3_config(w).hash(),
        runs=lambda w, input: other_run_args(input),
        wait=lock_wait,
    threads: config["train_threads"]
    resources:
        gpu=config["gpus_per_run"],
    conda:
        ENV
    shell:
        "AEA_DATA={params.root:q} aea train --profile {params.profile:q} --dataset market1501"
        " --method {wildcards.method} --seed {wildcards.seed} --evaluate --replace-changed --out {params.out:q}"
        " --threads {threads} --gpus {resources.gpu} --wait-lock {params.wait} data_root={params.root:q}"
        " {params.runs:q} > {log:q} 2>&1 || (tail -n 1 {log:q} >&2; exit 1)"


rule mechanism_v3_evaluate:
    # one job (one Python process: torch imported once) per unit: its 4 runs on the 3 occluded test sets
    wildcard_constraints:
        **MECH3_WILDCARDS,
    input:
        data=lambda w: mechanism3_done(w.gen),
        models=[f"{mechanism3_run('{gen}', m, '{seed}')}/{MODEL_FILE}" for m in MECH3_METHODS],
    output:
        [mechanism3_metrics("{gen}", m, "{seed}", s) for m in MECH3_METHODS
         for s in MECH3_RETESTS],
    log:
        f"{MECH3_RUNS}/redundant-g{{gen}}/evaluate-seed{{seed}}.log",
    params:
        runs=lambda w: [mechanism3_run(w.gen, m, w.seed) for m in MECH3_METHODS for s in MECH3_RETESTS],
        roots=lambda w: [mechanism3_root(s, w.gen) for m in MECH3_METHODS for s in MECH3_RETESTS],
    threads: config["train_threads"]
    resources:
        gpu=config["gpus_per_run"],
    conda:
        ENV
    script:
        "../scripts/evaluate_many.py"


rule mechanism_v3_table:
    input:
        metrics=mechanism3_inputs(),
        runs=runs_stamp("mechanism-v3", f"{MECH3_OUT}/mechanism.csv", mechanism3_inputs()),
    output:
        report(f"{MECH3_OUT}/mechanism.csv", caption="../report/mechanism.rst", category="Mechanism, version 3",
               labels={"file": "every prediction, comparison and check (csv)"}),
        f"{MECH3_OUT}/mechanism.md",
        f"{MECH3_OUT}/mechanism.png",
        f"{MECH3_OUT}/mechanism.units.csv",
        f"{MECH3_OUT}/mechanism.provenance.json",
    log:
        f"{MECH3_OUT}/logs/mechanism.log",
    params:
        out_dir=lambda w, output: os.path.dirname(output[0]),
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "aea table mechanism --metrics {input.metrics:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
        " || (tail -n 1 {log:q} >&2; exit 1)"
