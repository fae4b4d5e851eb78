# AEA reproduction workflow: every table of the paper regenerated and diffed against it.
#
#   snakemake --cores all results/table2.csv                  # main job: Table 2 on the default smoke profile
#   snakemake --cores all                                     # default target `all`: every table and figure
#   snakemake --cores all --config profile=tiny               # another profile: results/profiles/tiny/...
#   snakemake --report results/report.html                    # one HTML page: tables, diffs, claims, figures
#   snakemake --workflow-profile workflow/slurm      # paper profile on a SLURM cluster
#
# Settings: workflow/config/config.yaml (`--config key=value`), checked against
# workflow/schemas/config.schema.yaml before anything runs. Runs live in
# results/runs/<profile>/<dataset>/<run name>/seed<k>/; a run's fully resolved config is a param of its
# job, so an edited profile value reruns exactly the runs it changes (and those start afresh).

import os

from snakemake.utils import min_version, validate

min_version("8.0")

CONFIG_FILE = os.path.join(workflow.basedir, "workflow", "config", "config.yaml")  # found from any --directory


configfile: CONFIG_FILE


include: "workflow/rules/common.smk"
include: "workflow/rules/slurm_head.smk"  # the SLURM head through outages and refusals (docs/slurm.md)


check_config_files()
check_config_keys(config, "workflow/schemas/config.schema.yaml")
validate(config, "workflow/schemas/config.schema.yaml")

PROFILE_ARG = config["profile"]  # a profile name or a YAML path
PROFILE = load_profile(PROFILE_ARG)
RUNS = profile_runs(PROFILE.name)
DEFAULT_PROFILE = read_yaml(CONFIG_FILE)["profile"]
OUT = results_dir(PROFILE.name, DEFAULT_PROFILE)  # tables: results/ (default profile) or results/profiles/<name>/


report: "workflow/report/workflow.rst"


RUN_NAME_PATTERN = r"[a-z0-9]+(-[a-z0-9_.]+)*"  # aea.config.run_name: method, then -key_value per override


wildcard_constraints:
    dataset="|".join(DATASETS),
    seed=r"\d+",
    run=RUN_NAME_PATTERN,


rule all:
    default_target: True
    input:
        f"{OUT}/all",
        expand("{out}/{table}.html", out=OUT, table=TABLE_NAMES),
        expand("{out}/attention/{dataset}.png", out=OUT, dataset=PROFILE.datasets),


include: "workflow/rules/data.smk"
include: "workflow/rules/runs.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/mechanism_common.smk"
include: "workflow/rules/mechanism.smk"
