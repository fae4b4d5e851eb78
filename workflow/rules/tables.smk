# Tables and figures: each collects its runs' metrics.json into <out>/<table>.csv with a provenance
# sidecar, diffs it against results/paper/<table>.csv and checks the paper's qualitative claims; a
# self-contained HTML page per table and the attention maps of the default AEA runs go into the report.

for _name in TABLE_NAMES:

    rule:
        name:
            f"table_{_name}"
        input:
            metrics=table_inputs(_name),
            runs=runs_stamp(_name, table_files(_name, OUT)[0], table_inputs(_name)),
        output:
            table_outputs(_name),
        log:
            f"{OUT}/logs/{_name}.log",
        params:
            name=_name,
            out_dir=lambda w, output: os.path.dirname(output[0]),
            paper_dir=PAPER_DIR,
        resources:
            **LIGHT_JOB,
        conda:
            ENV
        shell:
            "aea table {params.name:q} --metrics {input.metrics:q} --out-dir {params.out_dir:q} --paper-dir {params.paper_dir:q}"
            " > {log:q} 2>&1 || (tail -n 1 {log:q} >&2; exit 1)"


rule interpretations:
    input:
        metrics=interpretation_inputs(),
        runs=runs_stamp("interpretations", f"{OUT}/interpretations.csv", interpretation_inputs()),
    output:
        report(f"{OUT}/interpretations.csv", caption="../report/interpretations.rst", category="Interpretations",
               labels={"file": "every comparison (csv)"}),
        f"{OUT}/interpretations.provenance.json",
        report(f"{OUT}/interpretations.diff.md", caption="../report/interpretations.rst",
               category="Interpretations", labels={"file": "each open choice run both ways (markdown)"}),
    log:
        f"{OUT}/logs/interpretations.log",
    params:
        out_dir=lambda w, output: os.path.dirname(output[0]),
        paper_dir=PAPER_DIR,
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "aea table interpretations --metrics {input.metrics:q} --out-dir {params.out_dir:q} --paper-dir {params.paper_dir:q}"
        " > {log:q} 2>&1 || (tail -n 1 {log:q} >&2; exit 1)"


rule table_page:
    input:
        unpack(page_inputs),
    output:
        report(f"{OUT}/{{table}}.html", caption="../report/table_page.rst", category="Tables",
               subcategory="{table}", labels={"table": "{table}", "file": "page: diff, claims, figure, cells"}),
    log:
        f"{OUT}/logs/{{table}}.page.log",
    wildcard_constraints:
        table="|".join(TABLE_NAMES),
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    script:
        "../scripts/table_page.py"


rule attention:
    input:
        model=os.path.join(run_dir("{dataset}", "aea", PROFILE.seeds[0]), MODEL_FILE),
    output:
        report(f"{OUT}/attention/{{dataset}}.png", caption="../report/attention.rst", category="Attention",
               labels={"dataset": "{dataset}"}),
    log:
        f"{OUT}/logs/attention/{{dataset}}.log",
    params:
        run=lambda w, input: os.path.dirname(input.model),
    threads: TRAIN_THREADS
    resources:
        gpu=GPUS,  # a forward pass of AEA's basic network: on the training's device
    conda:
        ENV
    shell:
        "aea show attention --run {params.run:q} --out {output:q} > {log:q} 2>&1 || (tail -n 1 {log:q} >&2; exit 1)"


rule all_tables:
    input:
        [path for name in TABLE_NAMES for path in table_files(name, OUT)],
        [str(path) for path in T.interpretation_files(OUT)],
        [str(path) for path in mechanism_files(OUT)],  # the mechanism experiment (workflow/rules/mechanism.smk)
    output:
        f"{OUT}/all",
    log:
        f"{OUT}/logs/all.log",
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "printf '%s\\n' {input:q} > {output:q} 2> {log:q}"
