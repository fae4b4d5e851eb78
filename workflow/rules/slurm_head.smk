# The SLURM side of the workflow: the light rules' resources and the lock wait of the trainings (below), and how the
# Snakemake head of a SLURM run (workflow/slurm, docs/slurm.md) copes with what lasts days: the SLURM plugin
# (snakemake-executor-plugin-slurm, pinned in pyproject.toml's `slurm` extra) is adjusted here, in the head's own
# process, where it falls short. Nothing here runs unless that plugin is installed; a job on a node
# (executor slurm-jobstep) never calls what is patched.
#
# - A controller outage (slurmctld restarted, a network cut) fails every status query of a check; the plugin then
#   drops all its jobs from its active list and the head waits forever for jobs it no longer asks about. Here a
#   query SLURM does not answer reads as "no news": every job stays active and the next check asks again (a warning
#   says so, then every 5 minutes), and the MinJobAge read while the controller answered is kept, so an outage does
#   not switch the status command to sacct (which never answers on a cluster without accounting).
# - sbatch: a submission the controller refuses (memory above any node's, a GPU the partition lacks, an unknown
#   partition or account) cannot succeed on a retry: it fails at once with SLURM's message. A submission that
#   found no controller waits for it and is made again.
# - A job whose outputs are all there when SLURM reports TIMEOUT finished its work (runs write their files whole,
#   at their end) and ran out of time after: it counts as done, not as a failure whose outputs are deleted.
# - No account given: the plugin's guess runs `sacct ... | tail -1` without a shell (sacct prints "invalid
#   option -- '1'"); here the guess asks sacct alone and goes on without an account when there is none.

import getpass
import os
import re
import subprocess
import time

from snakemake.logging import logger

# The resources of the rules that use neither torch nor a GPU (data generation and checks, tables, pages): every
# other rule, a rule added later included, takes the SLURM settings' default-resources, which are a training's.
LIGHT_JOB = {"mem_mb": 2000, "runtime": 30}
SUBMIT_RETRY_SECONDS = 10


def lock_wait(wildcards, resources):
    """Seconds `aea train --wait-lock` waits for another attempt of the same run (the job of a lost head) to end:
    the job's own time limit (resources runtime, minutes), none where there is no limit (a local run)."""
    return 60 * int(resources.get("runtime", 0) or 0)

SLURM_PLUGIN_VERSION = "2.8.0"  # the version these adjustments are written for (and pyproject.toml pins)
# sbatch's words when it did not reach the controller (as opposed to a controller that refused the job)
NO_CONTROLLER = re.compile(r"Unable to contact slurm controller|Socket timed out|Zero Bytes were transmitted"
                           r"|Connection refused|temporarily unable", re.IGNORECASE)


def patient_status_query(query):
    """The plugin's status query, answering "no news" (no job listed) when SLURM does not answer: the plugin then
    keeps every job active and asks again at its next check, instead of dropping them all. The next check also
    decides the status command again (squeue or sacct), with the controller back."""
    down_since, warned = None, 0

    async def query_or_no_news(command, logger):
        nonlocal down_since, warned
        status, seconds = await query(command, logger)
        now = time.monotonic()
        if status is not None:
            if down_since is not None:
                logger.warning(f"SLURM answers again after {now - down_since:.0f} s; job status checks go on")
                down_since, warned = None, 0
            return status, seconds
        down_since = now if down_since is None else down_since
        if now - down_since >= 300 * warned:  # at once, then every 5 minutes
            logger.warning(f"SLURM did not answer the job status query ({command.split()[0]}) for "
                           f"{now - down_since:.0f} s; the jobs go on on the cluster: asking again at the next check")
            warned += 1
        return {}, 0.0

    return query_or_no_news


def remembered_min_job_age(read):
    """MinJobAge as last read while the controller answered (the plugin reads it at every status check)."""
    last = None

    def min_job_age():
        nonlocal last
        value = read()
        last = value if value is not None else last
        return last

    return min_job_age


def account_from_sacct(logger):
    """The account of the user's most recent job, or None; no warning when there is none (or no accounting)."""
    done = subprocess.run(["sacct", "-nu", getpass.getuser(), "-o", "Account%256"], capture_output=True, text=True)
    accounts = [line.strip() for line in done.stdout.splitlines() if line.strip() not in ("", "(null)", "none")]
    if done.returncode != 0 or not accounts:
        logger.info("no SLURM account given (default-resources: slurm_account) and none found in sacct: "
                    "submitting without -A")
        return None
    return accounts[-1]


def submission_errors(report):
    """Executor._report_job_error_threadsafe, with SLURM's refusals made final and lost contacts retried."""

    def report_error(self, job_info, msg):
        if msg.startswith("SLURM sbatch failed"):
            if NO_CONTROLLER.search(msg):
                self.logger.warning(f"sbatch found no SLURM controller; submitting {job_info.job} again in "
                                    f"{SUBMIT_RETRY_SECONDS} s")
                time.sleep(SUBMIT_RETRY_SECONDS)
                return self.run_job(job_info.job)
            job_info.job.attempt = job_info.job.restart_times + 1  # no retry: SLURM refuses the same request again
            msg = "SLURM refused the job (not retried: the same request is refused again). " + msg
        return report(self, job_info, msg)

    return report_error


def late_timeouts(report):
    """Executor.report_job_error, except for a TIMEOUT after the job's outputs were all written."""

    def report_error(self, job_info, msg=None, **kwargs):
        job = job_info.job
        if msg and "SLURM status is: 'TIMEOUT'" in msg and all(os.path.exists(f) for f in job.output):
            self.logger.warning(f"SLURM job {job_info.external_jobid} ran out of time after writing all of "
                                f"{job}'s outputs: counted as done")
            return self.report_job_success(job_info)
        return report(self, job_info, msg, **kwargs)

    return report_error


def adjust_slurm_plugin():
    try:
        import snakemake_executor_plugin_slurm as plugin
        from importlib.metadata import version
    except ImportError:
        return
    if getattr(plugin, "adjusted_by_aea", False):
        return
    if version("snakemake-executor-plugin-slurm") != SLURM_PLUGIN_VERSION:
        logger.warning(f"snakemake-executor-plugin-slurm {version('snakemake-executor-plugin-slurm')} is not the "
                       f"{SLURM_PLUGIN_VERSION} this workflow is tested with (pip install -e '.[slurm]'): "
                       "a controller outage may hang the head (docs/slurm.md)")
        return
    plugin.query_job_status = patient_status_query(plugin.query_job_status)
    plugin.get_min_job_age = remembered_min_job_age(plugin.get_min_job_age)
    plugin.get_account = account_from_sacct
    executor = plugin.Executor
    executor._report_job_error_threadsafe = submission_errors(executor._report_job_error_threadsafe)
    executor.report_job_error = late_timeouts(executor.report_job_error)
    plugin.adjusted_by_aea = True


adjust_slurm_plugin()
