#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/slurm-local.sh: a one-machine Slurm cluster in a folder, for
# tests (tests/cli/t1300) and for trying SUBMIT=srun on a laptop.
#
#   slurm-local.sh start DIR   DIR (new or empty) gets slurm.conf, a munge
#                              key, state, spool and logs; munged,
#                              slurmctld and slurmd start (as root, no
#                              systemd), and it waits until `sinfo` shows
#                              the node idle; prints SLURM_CONF=DIR/slurm.conf
#   slurm-local.sh stop DIR    cancel every job of that cluster, stop its
#                              three daemons (by the pids start recorded)
#   slurm-local.sh run CMD...  start in a fresh temporary folder, run CMD
#                              with SLURM_CONF set, stop (also when CMD
#                              fails or the script is interrupted), exit
#                              with CMD's status
#
# Debian's slurm-wlm and munge (scripts/deps.sh). The node is `localhost`
# with SLURM_LOCAL_CPUS (default 2) CPUs, processes tracked through /proc
# (proctrack/linuxproc, task/none: no cgroups, so it runs in containers),
# consumable CPUs (select/cons_tres). The two ports are free ones picked at
# random, so several such clusters can run on one machine at once. Each
# failure is one line on stderr (with the daemons' log tails), status 1.
set -u

die() {
    echo "slurm-local: $*" >&2
    exit 1
}

need() {
    for p in "$@"; do
        command -v "$p" >/dev/null 2>&1 ||
            die "$p not found (install slurm-wlm and munge: scripts/deps.sh)"
    done
}

# a TCP port nothing listens on (bash's /dev/tcp connects or fails)
free_port() {
    local p
    for _ in $(seq 50); do
        p=$(( 20000 + RANDOM % 40000 ))
        (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    die "no free port found"
}

# the first line of a daemon's log that says why it stopped
log_tail() {
    for f in "$1"/munged.log "$1"/slurmctld.log "$1"/slurmd.log; do
        [ -s "$f" ] && { echo "--- $f"; tail -n 5 "$f"; }
    done >&2
}

start() {
    local d=$1
    need munged slurmctld slurmd sinfo
    mkdir -p "$d" || die "cannot create $d"
    d=$(cd "$d" && pwd)
    [ -e "$d/slurm.conf" ] && die "$d already holds a cluster"
    mkdir -p "$d/state" "$d/spool" "$d/munge"
    chmod 700 "$d" "$d/munge"
    # munge: a fresh key, its own socket
    head -c 1024 /dev/urandom > "$d/munge/munge.key"
    chmod 400 "$d/munge/munge.key"
    munged -F -f --key-file="$d/munge/munge.key" \
        --socket="$d/munge/munge.sock" --pid-file="$d/munge/munged.pid" \
        --log-file="$d/munged.log" --seed-file="$d/munge/munged.seed" \
        </dev/null >>"$d/munged.log" 2>&1 &
    echo $! > "$d/munged.pid"
    local cport dport
    cport=$(free_port)
    dport=$(free_port)
    [ "$cport" = "$dport" ] && dport=$((dport + 1))
    cat > "$d/slurm.conf" <<EOF
# written by scripts/slurm-local.sh: one node, everything under this folder
ClusterName=sfclocal
SlurmctldHost=localhost
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$d/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.slurmpid
SlurmdPidFile=$d/slurmd.slurmpid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SwitchType=switch/none
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
InactiveLimit=0
KillWait=2
MinJobAge=5
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${SLURM_LOCAL_CPUS:-2} State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$d/slurm.conf
    # munged answers once its socket exists
    local n=0
    while [ ! -S "$d/munge/munge.sock" ]; do
        n=$((n + 1))
        if [ $n -gt 100 ] || ! alive "$(cat "$d/munged.pid")"; then
            log_tail "$d"
            stop "$d"
            die "munged did not start"
        fi
        sleep 0.1
    done
    slurmctld -D -i -f "$SLURM_CONF" </dev/null >>"$d/slurmctld.out" 2>&1 &
    echo $! > "$d/slurmctld.pid"
    slurmd -D -N localhost -f "$SLURM_CONF" </dev/null \
        >>"$d/slurmd.out" 2>&1 &
    echo $! > "$d/slurmd.pid"
    n=0
    until [ "$(sinfo -h -N -o %t 2>/dev/null)" = idle ]; do
        n=$((n + 1))
        local dead=
        for p in slurmctld slurmd munged; do
            alive "$(cat "$d/$p.pid")" || dead="$dead $p"
        done
        if [ $n -gt 300 ] || [ -n "$dead" ]; then
            log_tail "$d"
            stop "$d"
            die "the node did not become idle${dead:+ (stopped:$dead)}"
        fi
        sleep 0.1
    done
    echo "SLURM_CONF=$SLURM_CONF"
}

# pid $1 runs (a zombie, ended but not yet reaped by init, does not)
alive() {
    local st
    # /proc/PID/stat: "pid (comm) state ..."
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    case "${st##*) }" in Z*|X*) return 1 ;; esac
}

# SIGTERM to a recorded pid, SIGKILL after 5 s
end_pid() {
    local f=$1 p n=0
    [ -s "$f" ] || return 0
    p=$(cat "$f")
    alive "$p" && kill "$p" 2>/dev/null || { rm -f "$f"; return 0; }
    while alive "$p" && [ $n -lt 50 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    kill -KILL "$p" 2>/dev/null
    rm -f "$f"
}

stop() {
    local d=$1
    [ -d "$d" ] || return 0
    # the jobs first, while slurmd can still end their steps; only when
    # both daemons live (a signal to the whole process group may have
    # ended them already: then the clients would wait for them in vain)
    if [ -e "$d/slurm.conf" ] && [ -s "$d/slurmctld.pid" ] &&
        [ -s "$d/slurmd.pid" ] &&
        alive "$(cat "$d/slurmctld.pid")" && alive "$(cat "$d/slurmd.pid")"
    then
        export SLURM_CONF=$d/slurm.conf
        timeout 10 scancel --quiet --full --user="$(id -un)" 2>/dev/null
        local n=0
        while [ -n "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] &&
            [ $n -lt 50 ]; do
            sleep 0.1
            n=$((n + 1))
        done
    fi
    end_pid "$d/slurmd.pid"
    end_pid "$d/slurmctld.pid"
    end_pid "$d/munged.pid"
    return 0
}

case "${1:-}" in
start)
    [ $# -eq 2 ] || die "usage: slurm-local.sh start DIR"
    start "$2" ;;
stop)
    [ $# -eq 2 ] || die "usage: slurm-local.sh stop DIR"
    stop "$2" ;;
run)
    shift
    [ $# -ge 1 ] || die "usage: slurm-local.sh run CMD..."
    d=$(mktemp -d "${TMPDIR:-/tmp}/slurm-local-XXXXXX") || die "no temp dir"
    trap 'stop "$d"; rm -rf "$d"' EXIT
    trap 'exit 130' INT TERM
    start "$d" >/dev/null || exit 1
    "$@"
    exit $? ;;
*)
    die "usage: slurm-local.sh start DIR | stop DIR | run CMD..." ;;
esac
