#!/usr/bin/env bash
# A one-node Slurm for the project's scale-out test (tests/slurm.rs): this host is the controller
# and the only compute node (Debian's Slurm, munge; no systemd, cgroups or accounting).
#
#   scripts/slurm.sh start BASE   installs slurmctld slurmd slurm-client munge if missing (needs
#                                 root), writes BASE/etc/slurm.conf, starts munged, slurmctld and
#                                 slurmd with their PID files in BASE/run, waits for the node
#   scripts/slurm.sh stop BASE    stops those three daemons by their PIDs, and nothing else
#
# Commands need SLURM_CONF=BASE/etc/slurm.conf. Ports come from SLURM_PORT (default 6817, and
# the next one). Adapted from the workplace's one-node Slurm recipe (tried with Slurm 22.05).
set -euo pipefail
action=${1:?usage: slurm.sh start|stop BASE}
base=${2:?usage: slurm.sh start|stop BASE}
port=${SLURM_PORT:-6817}

stop() {
    for daemon in slurmd slurmctld munged; do
        local file=$base/run/$daemon.pid
        [ -s "$file" ] || continue
        local pid
        pid=$(cat "$file")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$file"
    done
}

if [ "$action" = stop ]; then
    stop
    exit 0
fi
[ "$action" = start ] || { echo "usage: slurm.sh start|stop BASE" >&2; exit 2; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) * 8 / 10 ))
mkdir -p "$base"/{etc,state/ctld,state/d,log,run,munge}
cat >"$base/etc/slurm.conf" <<CONF
ClusterName=classify
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$base/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$base/state/ctld
SlurmdSpoolDir=$base/state/d
SlurmctldPidFile=$base/run/slurmctld.pid
SlurmdPidFile=$base/run/slurmd.pid
SlurmctldLogFile=$base/log/slurmctld.log
SlurmdLogFile=$base/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

# munge with its own key and socket under BASE, so that no system munged is disturbed.
if [ ! -s "$base/munge/munge.key" ]; then
    dd if=/dev/urandom bs=1 count=1024 of="$base/munge/munge.key" status=none
fi
chown -R munge:munge "$base/munge" 2>/dev/null || true
chmod 700 "$base/munge"
chmod 400 "$base/munge/munge.key"
runuser -u munge -- /usr/sbin/munged --key-file="$base/munge/munge.key" \
    --socket="$base/munge/munge.socket" --pid-file="$base/munge/munged.pid" \
    --log-file="$base/munge/munged.log" --seed-file="$base/munge/munged.seed" --force
for _ in $(seq 50); do [ -S "$base/munge/munge.socket" ] && break; sleep 0.1; done
cp "$base/munge/munged.pid" "$base/run/munged.pid"

export SLURM_CONF=$base/etc/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 120); do
    state=$(sinfo -h -o %T 2>/dev/null || true)
    [ "$state" = idle ] && exit 0
    sleep 0.5
done
echo "slurm.sh: the node did not become idle; see $base/log" >&2
exit 1
