#!/usr/bin/env bash
# A single-node SLURM cluster on loopback, for trying (and testing) the workflow's SLURM path on one machine.
#
#   workflow/scripts/slurm-local.sh up       # as root: install Debian's packages if missing, start the cluster
#   workflow/scripts/slurm-local.sh down     # stop the daemons `up` started (by their pids, nothing else)
#   workflow/scripts/slurm-local.sh status
#   workflow/scripts/slurm-local.sh outage 30  # stop slurmctld for 30 s, then start it again (jobs survive)
#
# Everything lives in the state directory ($AEA_SLURM_DIR, default /tmp/aea-slurm): the generated slurm.conf,
# a munge key and socket of its own, spool, logs and the pids `up` started. The one file outside it is the link
# /etc/slurm/slurm.conf -> the generated slurm.conf: the SLURM plugin of Snakemake drops SLURM_CONF from a job's
# environment, so the `srun` inside a job finds the configuration only at the default path (as on a real
# cluster). `up` refuses to replace a slurm.conf it did not write; `down` removes the link.
# The package scripts cannot start services in a container, so the daemons are started directly. No accounting
# database: sacct does not work here, so Snakemake must poll with squeue (the SLURM settings, workflow/slurm, say so).
set -euo pipefail

STATE=${AEA_SLURM_DIR:-/tmp/aea-slurm}
CONF=$STATE/slurm.conf
SYSTEM_CONF=/etc/slurm/slurm.conf  # where SLURM's commands look when SLURM_CONF is not set
PIDS=$STATE/pids
PACKAGES=(munge slurmctld slurmd slurm-client)

die() { echo "slurm-local: error: $*" >&2; exit 2; }
say() { echo "slurm-local: $*" >&2; }

install_packages() {
    if command -v munged >/dev/null && command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sinfo >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "SLURM is not installed and installing needs root: run as root, or apt-get install ${PACKAGES[*]}"
    command -v apt-get >/dev/null || die "SLURM is not installed and there is no apt-get: install ${PACKAGES[*]} yourself"
    say "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no package lists yet; update only when the install cannot find the packages.
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$STATE/apt.log" 2>&1 || {
        apt-get update -q >>"$STATE/apt.log" 2>&1
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$STATE/apt.log" 2>&1
    } || die "apt-get install ${PACKAGES[*]} failed (see $STATE/apt.log)"
}

# The pid recorded for a daemon, if that process is still the daemon (a recycled pid is not ours).
live_pid() {
    local name=$1 pid
    pid=$(sed -n "s/^$name //p" "$PIDS" 2>/dev/null | tail -n 1 || true)
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && grep -qa "$name" "/proc/$pid/cmdline" \
        && grep -qa "$STATE" "/proc/$pid/cmdline" && echo "$pid"
    return 0
}

node_state() { sinfo -h -N -o %t 2>/dev/null | head -n 1; }

write_config() {
    local node
    # `slurmd -C` prints this machine's node line (CPUs, sockets, cores, memory); the cluster reaches it on loopback.
    node=$(slurmd -C | head -n 1)
    [[ $node == NodeName=* ]] || die "slurmd -C printed no node line: $node"
    NODE_NAME=$(sed 's/^NodeName=\([^ ]*\).*/\1/' <<<"$node")
    mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log" "$STATE/munge"
    cat >"$CONF.tmp" <<EOF
# Written by workflow/scripts/slurm-local.sh: one node on loopback, no accounting, no cgroups.
ClusterName=aealocal
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue for 5 minutes: the Snakemake SLURM plugin polls with squeue only when
# MinJobAge >= 3 x its initial wait (else it falls back to sacct, which needs accounting).
MinJobAge=300
InactiveLimit=0
KillWait=5
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=$NODE_NAME Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

link_config() {
    if [ -e "$SYSTEM_CONF" ] || [ -L "$SYSTEM_CONF" ]; then
        [ "$(readlink "$SYSTEM_CONF")" = "$CONF" ] && return
        die "$SYSTEM_CONF exists and is not this script's; this machine has a SLURM of its own: use that one"
    fi
    mkdir -p "$(dirname "$SYSTEM_CONF")"
    ln -s "$CONF" "$SYSTEM_CONF"
}

start_munge() {
    [ -n "$(live_pid munged)" ] && return
    if [ ! -s "$STATE/munge/munge.key" ]; then
        (umask 077; head -c 1024 /dev/urandom >"$STATE/munge/munge.key")
    fi
    chmod 700 "$STATE/munge"
    munged --force --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/seed"
    echo "munged $(cat "$STATE/munge/munged.pid")" >>"$PIDS"
}

start_daemon() {
    local name=$1
    shift
    [ -n "$(live_pid "$name")" ] && return
    rm -f "$STATE/$name.pid"
    "$name" -f "$CONF" "$@"
    for _ in $(seq 50); do
        [ -s "$STATE/$name.pid" ] && break
        sleep 0.1
    done
    [ -s "$STATE/$name.pid" ] || die "$name did not start (see $STATE/log/$name.log)"
    echo "$name $(cat "$STATE/$name.pid")" >>"$PIDS"
}

up() {
    local started=$SECONDS
    mkdir -p "$STATE"
    if [ -n "$(live_pid slurmctld)" ] && [ -n "$(live_pid slurmd)" ] && [ "$(node_state)" = idle ]; then
        say "already up (state $STATE)"
        return
    fi
    install_packages
    [ "$(id -u)" = 0 ] || die "starting the daemons needs root (they run as root on this one node)"
    if [ -z "$(live_pid munged)$(live_pid slurmctld)$(live_pid slurmd)" ]; then
        : >"$PIDS"  # pids of an earlier cluster that is gone (a reboot, a kill) are nobody's now
    fi
    [ -n "$(live_pid slurmctld)" ] || write_config
    link_config
    start_munge
    start_daemon slurmctld -i  # -i: ignore state left by an earlier cluster in this directory
    start_daemon slurmd -N "$(sed -n 's/^PartitionName=[^ ]* Nodes=\([^ ]*\).*/\1/p' "$CONF")"
    for _ in $(seq 120); do
        case "$(node_state)" in
            idle | mix | alloc) say "up in $((SECONDS - started)) s: node $(node_state) (state $STATE)"
                return ;;
            down* | drain*) scontrol update nodename=ALL state=resume 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    die "the node did not become idle in 60 s (sinfo says '$(node_state)'; see $STATE/log/)"
}

down() {
    [ -f "$PIDS" ] || { say "nothing to stop (no $PIDS)"; return; }
    local jobs
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086  # one word per job id
        scancel $jobs || true
        sleep 2
    fi
    for name in slurmd slurmctld munged; do
        local pid
        pid=$(live_pid "$name")
        [ -n "$pid" ] || continue
        kill "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    done
    rm -f "$PIDS"
    [ "$(readlink "$SYSTEM_CONF" 2>/dev/null)" = "$CONF" ] && rm -f "$SYSTEM_CONF"
    say "down"
}

# A controller outage, as a restart on a real cluster: slurmctld stopped for SECONDS (default 30), then started again
# from its saved state (no -i), so the jobs it had, running or queued, go on. slurmd and the jobs keep running.
outage() {
    local pid seconds=${1:-30}
    pid=$(live_pid slurmctld)
    [ -n "$pid" ] || die "slurmctld is not running (start the cluster with: $0 up)"
    kill "$pid"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "slurmctld ($pid) did not stop in 10 s"
    say "slurmctld stopped for ${seconds} s"
    sleep "$seconds"
    start_daemon slurmctld
    say "slurmctld started again ($(live_pid slurmctld))"
}

status() {
    local pid
    for name in munged slurmctld slurmd; do
        pid=$(live_pid "$name")
        echo "$name: ${pid:-not running}"
    done
    echo "node: $(node_state)"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    outage) outage "${2:-30}" ;;
    *) die "usage: $0 up|down|status|outage [SECONDS] (state in \$AEA_SLURM_DIR, default /tmp/aea-slurm)" ;;
esac
