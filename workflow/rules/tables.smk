# Tables and figures: each collects its runs' metrics.json into results/<table>.csv with a provenance
# sidecar, diffs it against results/paper/<table>.csv and checks the paper's qualitative claims.

from aea import tables as T

TABLE_NAMES = tuple(T.TABLES)
# The profile's sweep values replace the paper's grids (smaller profiles sweep fewer points).
SWEEP_VALUES = {k: v for k, v in PROFILE.sweeps.items()}


def table_inputs(name):
    spec = T.get_spec(name)
    datasets = [d for d in spec.datasets if d in PROFILE.datasets]
    values = {p: SWEEP_VALUES[p] for p in spec.params if p in SWEEP_VALUES}
    return [str(p) for p in T.metrics_paths(name, "results/runs", PROFILE.name, PROFILE.seeds, datasets, values,
                                            canonical=PROFILE.canonical)]


def table_outputs(name):
    outputs = [f"results/{name}.csv", f"results/{name}.provenance.json", f"results/{name}.diff.csv",
               f"results/{name}.diff.md"]
    return outputs + ([f"results/{name}.png"] if T.get_spec(name).figure_param else [])


for _name in TABLE_NAMES:
    rule:
        name: f"table_{_name}"
        input: table_inputs(_name)
        output: table_outputs(_name)
        params: name=_name
        shell: "aea table {params.name} --metrics {input} --out-dir results --paper-dir {PAPER_DIR}"


rule all_tables:
    input: [out for name in TABLE_NAMES for out in table_outputs(name)]
    output: "results/all"
    run:
        from aea.io import write_text
        write_text(output[0], "".join(f"{path}\n" for path in input))
