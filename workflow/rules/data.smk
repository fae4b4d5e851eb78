# Datasets: generated in the real on-disk formats for synthetic profiles (smoke, tiny), checked for
# layout and counts in every profile before any training starts.

from aea.config import data_root

DATA_ROOT = data_root(PROFILE.defaults.get("data_root", "data"))
CHECK_COUNTS = "" if PROFILE.defaults.get("check_counts", True) else "--no-check-counts"
# CUHK03 labeled and detected come from one release (cuhk-03.mat): generate it once.
RELEASE = {"market1501": "market1501", "dukemtmcreid": "dukemtmcreid",
           "cuhk03-labeled": "cuhk03-labeled", "cuhk03-detected": "cuhk03-labeled"}


rule synthetic_dataset:
    output:
        f"{DATA_ROOT}/.aea/{{release}}.{PROFILE.synthetic}.done",
    log:
        f"{DATA_ROOT}/.aea/{{release}}.log",
    shell:
        "aea data make-synthetic --dataset {wildcards.release} --root {DATA_ROOT} --size {PROFILE.synthetic}"
        " > {log} 2>&1 && touch {output}"


def dataset_source(wildcards):
    if PROFILE.synthetic:
        return f"{DATA_ROOT}/.aea/{RELEASE[wildcards.dataset]}.{PROFILE.synthetic}.done"
    return []


rule check_dataset:
    input:
        dataset_source,
    output:
        f"{RUNS}/data/{{dataset}}.json",
    shell:
        "aea data check --dataset {wildcards.dataset} --root {DATA_ROOT} --json {output} {CHECK_COUNTS}"
