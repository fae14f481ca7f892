#!/bin/sh
# make test-slurm: a real single-node Slurm cluster (Debian's slurm-wlm and
# munge, started here with a private configuration and ports, stopped at the
# end) runs a plan-mode sweep as a 4-task job array with `mecbed sweep
# --slurm 4 --submit`; the merged results.csv must equal the unsplit sweep's.
# Needs root (the daemons); installs slurm-wlm and munge when missing.
# Exit 77 (skip) when not root.
set -u
B=${BUILD:-build}
M=$B/mecbed
CONF=${SLURM_TEST_CONF:-experiments/bandwidth.conf}
if [ "$(id -u)" != 0 ]; then echo "skip: needs root (munged, slurmctld, slurmd)"; exit 77; fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    echo "slurm-test: installing slurm-wlm and munge"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null ||
        { echo "FAIL: cannot install slurm-wlm munge"; exit 1; }
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-slurm.XXXXXX")
MUNGE_PID= 
cleanup() {
    [ -f "$T/slurmd.pid" ] && kill "$(cat "$T/slurmd.pid")" 2>/dev/null
    [ -f "$T/slurmctld.pid" ] && kill "$(cat "$T/slurmctld.pid")" 2>/dev/null
    [ -f "$T/munged.pid" ] && kill "$(cat "$T/munged.pid")" 2>/dev/null
    sleep 1
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "FAIL: $*"; for f in "$T"/*.log; do echo "--- $f"; tail -n 15 "$f"; done; exit 1; }

# munge with its own socket, key and pid file (the system's key when present)
mkdir -p "$T/munge" && chown munge "$T/munge" 2>/dev/null
KEY=/etc/munge/munge.key
[ -r "$KEY" ] || { dd if=/dev/urandom of="$T/munge/munge.key" bs=128 count=1 2>/dev/null; KEY=$T/munge/munge.key; }
export MUNGE_SOCKET="$T/munge/munge.socket"
munged --force --key-file="$KEY" --socket="$MUNGE_SOCKET" --pid-file="$T/munged.pid" \
    --log-file="$T/munged.log" --seed-file="$T/munge/seed" || fail "munged did not start"

H=$(hostname -s)
CPUS=$(nproc)
cat > "$T/slurm.conf" <<CONF
ClusterName=mecbedtest
SlurmctldHost=$H
SlurmUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$H CPUs=$CPUS State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
mkdir -p "$T/state" "$T/spool"
export SLURM_CONF="$T/slurm.conf"
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start"
i=0
until sinfo -h -o %T 2>/dev/null | grep -q idle; do
    i=$((i + 1)); [ $i -gt 30 ] && fail "the node did not become idle in 30 s ($(sinfo 2>&1 | tail -n 1))"
    sleep 1
done
echo "slurm-test: single-node cluster up ($H, $CPUS CPUs)"

"$M" sweep "$CONF" --quick --no-times --no-plots --out "$T/full" 2>"$T/full.log" || fail "unsplit sweep"
t0=$(date +%s)
"$M" sweep "$CONF" --quick --no-times --no-plots --slurm 4 --submit --json --out "$T/sharded" > "$T/submit.json" \
    2>"$T/submit.log" || fail "sweep --slurm 4 --submit"
cat "$T/submit.log"
merge=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["merge_job"])' "$T/submit.json")
i=0
while squeue -h 2>/dev/null | grep -q .; do
    i=$((i + 1)); [ $i -gt 600 ] && fail "jobs still queued after 600 s: $(squeue)"
    sleep 1
done
state=$(scontrol show job "$merge" 2>/dev/null | grep -o 'JobState=[A-Z]*' | head -n 1)
echo "slurm-test: jobs finished in $(( $(date +%s) - t0 )) s; merge job $merge $state"
for k in 1 2 3 4; do
    [ -f "$T/sharded/shard-$k/results.csv" ] || fail "shard $k wrote no results.csv (see $T/sharded/slurm)"
done
cat "$T/sharded/slurm/merge.log" 2>/dev/null
cmp "$T/full/results.csv" "$T/sharded/results.csv" || fail "merged results.csv differs from the unsplit sweep's"
rows=$(($(wc -l < "$T/full/results.csv") - 1))
echo "PASS: slurm-test: 4 array tasks + merge job; merged results.csv ($rows rows) equals the unsplit sweep's"
