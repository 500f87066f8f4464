#!/usr/bin/env bash
# Starts or stops a one-node Slurm cluster (slurmctld + slurmd + munged) in a
# private directory, for the job-array test. Needs root and Debian's
# slurm-wlm and munge.
#
#   cluster.sh start DIR   prints "SLURM_CONF=DIR/slurm.conf" when the node is idle
#   cluster.sh stop DIR
set -u
cmd=${1:?start or stop}
dir=${2:?directory}

# Asks the daemons to stop and waits for each to be gone (tail --pid
# returns when the process exits), killing only one still there after 10 s.
stop() {
    local pidfile pid pids=()
    for pidfile in "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munged.pid; do
        [ -f "$pidfile" ] || continue
        pids+=("$(cat "$pidfile")")
        kill "${pids[-1]}" 2>/dev/null
        rm -f "$pidfile"
    done
    for pid in "${pids[@]}"; do
        timeout 10 tail -s 0.1 --pid="$pid" -f /dev/null || kill -9 "$pid" 2>/dev/null
    done
    return 0
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi

fail() {
    echo "cluster: $*" >&2
    for log in "$dir"/*.log; do
        [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
    done
    stop
    exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root"
for tool in slurmctld slurmd sbatch sinfo munged; do
    command -v "$tool" >/dev/null || fail "$tool not installed (apt-get install slurm-wlm munge)"
done

mkdir -p "$dir"/state "$dir"/spool "$dir"/munge
host=$(hostname -s)
cpus=$(nproc)

# munge: a key of our own and a socket in our directory, so a system
# munged (or none) does not matter.
key="$dir"/munge/munge.key
sock="$dir"/munge/munge.socket
dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
chmod 400 "$key"
munged --force --key-file="$key" --socket="$sock" --pid-file="$dir"/munged.pid \
    --log-file="$dir"/munged.log --seed-file="$dir"/munge/seed \
    || fail "munged did not start"

# Ports the kernel has just found free, not fixed ones: a second cluster
# (another build's tests, another checkout's) running at the same time
# would otherwise fail to bind, and the test would skip.
read -r ctld_port slurmd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s:
    x.bind(("", 0))
print(*(x.getsockname()[1] for x in s))
') || fail "no free ports for slurmctld and slurmd"

cat >"$dir"/slurm.conf <<CONF
ClusterName=imgbatch-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmdSpoolDir=$dir/spool
StateSaveLocation=$dir/state
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

export SLURM_CONF="$dir"/slurm.conf
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start"
for _ in $(seq 1 60); do
    state=$(sinfo -h -o %t 2>/dev/null | head -n 1)
    case "$state" in
    idle*|mix*|alloc*)
        echo "SLURM_CONF=$SLURM_CONF"
        exit 0
        ;;
    esac
    sleep 0.5
done
fail "the node did not become idle (state: ${state:-none})"
