# The mechanism experiment of issue 11, as pre-registered in docs/mechanism.md: generator-version-2 data sets,
# the runs of the design's table, their evaluations at every test-time occlusion p, and the table
#   <out>/mechanism.csv + .md + .png (+ .provenance.json)      e.g. snakemake --cores all results/mechanism.csv
# Runs use their own profile: aea/profiles/mechanism.yaml, or mechanism-tiny.yaml when the workflow runs the tiny
# profile (the test suite). Data sets: <mechanism data root>/<variant>-p<p>-g<generator seed>/ (one root each:
# the release directory name is fixed); the data root is the profile's, under $AEA_DATA when that is set.
# Runs: results/runs/<mechanism profile>/<variant>-g<generator seed>/<method>/seed<k>/, trained once on the p = 0
# data of their generator seed (metrics.json) and evaluated on the p = 0.2 and 0.4 test sets of the same seed
# (metrics-p0.2.json, metrics-p0.4.json, both by one job: workflow/scripts/evaluate_many.py): the training split
# is byte-identical across p.
# Needs workflow/rules/mechanism_common.smk included before it.


rule mechanism_data:
    wildcard_constraints:
        **MECH_WILDCARDS,
    output:
        f"{MECH_DATA}/.aea/{{variant}}-p{{p}}-g{{gen}}.{MECH_PROFILE.synthetic}.done",
    log:
        f"{MECH_DATA}/.aea/{{variant}}-p{{p}}-g{{gen}}.log",
    params:
        root=lambda w: mechanism_root(w.variant, w.p, w.gen),
        size=MECH_PROFILE.synthetic,
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "aea data make-mechanism --root {params.root:q} --variant {wildcards.variant:q} --occlusion {wildcards.p}"
        " --seed {wildcards.gen} --size {params.size:q} > {log:q} 2>&1 && touch {output:q}"
        " || (tail -n 1 {log:q} >&2; exit 1)"


rule mechanism_train:
    wildcard_constraints:
        **MECH_WILDCARDS,
    input:
        unpack(mechanism_train_inputs),
    output:
        model=f"{mechanism_run('{variant}', '{gen}', '{method}', '{seed}')}/{MODEL_FILE}",
        metrics=mechanism_metrics("{variant}", "{gen}", "{method}", "{seed}", "0"),
    log:
        f"{mechanism_run('{variant}', '{gen}', '{method}', '{seed}')}/job.log",
    params:
        profile=MECH_PROFILE.name,
        root=lambda w: mechanism_root(w.variant, "0", w.gen),
        out=lambda w: mechanism_run(w.variant, w.gen, w.method, w.seed),
        config_hash=mechanism_config_hash,
        runs=lambda w, input: other_run_args(input),
        wait=lock_wait,
    threads: config["train_threads"]
    resources:
        gpu=config["gpus_per_run"],
    conda:
        ENV
    shell:
        # AEA_DATA: the data root wins over any outer one; data_root=: the run's config records its data
        "AEA_DATA={params.root:q} aea train --profile {params.profile:q} --dataset market1501"
        " --method {wildcards.method} --seed {wildcards.seed} --evaluate --replace-changed --out {params.out:q}"
        " --threads {threads} --gpus {resources.gpu} --wait-lock {params.wait} data_root={params.root:q}"
        " {params.runs:q} > {log:q} 2>&1 || (tail -n 1 {log:q} >&2; exit 1)"


rule mechanism_evaluate:
    # one job (one Python process: torch imported once) per run for all its test sets beyond p = 0
    wildcard_constraints:
        **{**MECH_WILDCARDS, "variant": "|".join(MECH_RETESTED)},
    input:
        data=[f"{MECH_DATA}/.aea/{{variant}}-p{p}-g{{gen}}.{MECH_PROFILE.synthetic}.done" for p in MECH_OCCLUSION[1:]],
        model=f"{mechanism_run('{variant}', '{gen}', '{method}', '{seed}')}/{MODEL_FILE}",
    output:
        [mechanism_metrics("{variant}", "{gen}", "{method}", "{seed}", p) for p in MECH_OCCLUSION[1:]],
    log:
        f"{mechanism_run('{variant}', '{gen}', '{method}', '{seed}')}/evaluate.log",
    params:
        roots=lambda w: [mechanism_root(w.variant, p, w.gen) for p in MECH_OCCLUSION[1:]],
    threads: config["train_threads"]
    resources:
        gpu=config["gpus_per_run"],
    conda:
        ENV
    script:
        "../scripts/evaluate_many.py"


rule mechanism_table:
    input:
        metrics=mechanism_inputs(),
        runs=runs_stamp("mechanism", f"{OUT}/mechanism.csv", mechanism_inputs()),
    output:
        report(f"{OUT}/mechanism.csv", caption="../report/mechanism.rst", category="Mechanism",
               labels={"file": "every prediction and control (csv)"}),
        report(f"{OUT}/mechanism.md", caption="../report/mechanism.rst", category="Mechanism",
               labels={"file": "verdicts and attention measures (markdown)"}),
        report(f"{OUT}/mechanism.png", caption="../report/mechanism.rst", category="Mechanism",
               labels={"file": "gain of AEA against p (figure)"}),
        f"{OUT}/mechanism.provenance.json",
    log:
        f"{OUT}/logs/mechanism.log",
    params:
        out_dir=lambda w, output: os.path.dirname(output[0]),
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "aea table mechanism --metrics {input.metrics:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
        " || (tail -n 1 {log:q} >&2; exit 1)"


include: "mechanism_v3_common.smk"
include: "mechanism_v3.smk"  # the version-3 experiment (docs/mechanism.md, "Generator version 3")
