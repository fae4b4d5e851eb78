# Datasets: generated in the real on-disk formats for synthetic profiles (smoke, tiny), checked for
# layout and counts in every profile before any training starts. Every training takes its dataset's check
# as input, so whatever reruns the check reruns the runs on that data: for generated data its marker, for
# real data the signature of its listing (a param of the check).

DATA_ROOT = str(data_root(PROFILE.defaults.get("data_root", "data")))
CHECK_COUNTS = [] if PROFILE.defaults.get("check_counts", True) else ["--no-check-counts"]


rule synthetic_dataset:
    output:
        f"{DATA_ROOT}/.aea/{{release}}.{PROFILE.synthetic}.done",
    log:
        f"{DATA_ROOT}/.aea/{{release}}.log",
    params:
        root=lambda w, output: os.path.dirname(os.path.dirname(output[0])),  # <root>/.aea/<release>.<size>.done
        size=PROFILE.synthetic,
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "aea data make-synthetic --dataset {wildcards.release:q} --root {params.root:q} --size {params.size:q}"
        " > {log:q} 2>&1 && touch {output:q} || (tail -n 1 {log:q} >&2; exit 1)"


rule check_dataset:
    input:
        dataset_source,
    output:
        f"{RUNS}/data/{{dataset}}.json",
    log:
        f"{RUNS}/data/{{dataset}}.log",
    params:
        root=DATA_ROOT,
        counts=CHECK_COUNTS,
        data=data_version,
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "aea data check --dataset {wildcards.dataset:q} --root {params.root:q} --json {output:q} {params.counts:q}"
        " > {log:q} 2>&1 || (tail -n 1 {log:q} >&2; exit 1)"
