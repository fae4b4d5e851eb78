#!/usr/bin/env bash
# This workflow's SLURM jobs as a person reads them (docs/slurm.md). The plugin names every job after its head's run
# (a UUID, new at each start of the head); the rule and wildcards sit in the job's comment, and its log in
# .snakemake/slurm_logs/rule_<rule>/<wildcards>/<job id>.log (kept: the SLURM settings keep successful jobs' logs).
#
#   workflow/scripts/slurm-status.sh           # your jobs SLURM still knows: id, state, time used/limit, rule,
#                                              # wildcards (dataset, run name, seed), log
#   workflow/scripts/slurm-status.sh RUN_DIR   # a run's attempts (the headers of its train.log) and their SLURM logs
#
# Run it in the workflow's directory (where .snakemake/ is).
set -euo pipefail

LOGS=.snakemake/slurm_logs

log_of() { find "$LOGS" -name "$1.log" 2>/dev/null | head -n 1; }

if [ $# -eq 0 ]; then
    printf '%-9s %-11s %-22s %s\n' JOBID STATE TIME/LIMIT "RULE  WILDCARDS  LOG"
    squeue -h -u "$(id -un)" -t all -o '%i|%T|%M|%l|%k' | while IFS='|' read -r id state used limit comment; do
        [[ $comment == rule_* ]] || continue  # not a Snakemake job
        rule=${comment#rule_}
        wildcards=""
        if [[ $rule == *_wildcards_* ]]; then
            wildcards=${rule#*_wildcards_}
            rule=${rule%%_wildcards_*}
        fi
        printf '%-9s %-11s %-22s %s  %s  %s\n' "$id" "$state" "$used/$limit" "$rule" "$wildcards" "$(log_of "$id")"
    done
else
    run=${1%/}
    [ -f "$run/train.log" ] || { echo "slurm-status: no $run/train.log (a run folder has one once it started)" >&2; exit 2; }
    # the run's own headers (an AEA run's log also holds those of the Baseline-1 run its job writes)
    grep -h "attempt started" "$run/train.log" | while read -r line; do
        path=$(sed -n 's/.*=== aea train \(.*\): attempt started.*/\1/p' <<<"$line")
        [[ $run == *"$path" || $path == *"$run" ]] || continue
        echo "${line#*=== }"
        id=$(sed -n 's/.*SLURM job \([0-9]*\).*/\1/p' <<<"$line")
        [ -z "$id" ] || echo "    SLURM log: $(log_of "$id")"
    done
fi
