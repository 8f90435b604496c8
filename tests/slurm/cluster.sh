#!/usr/bin/env bash
# A throwaway one-node SLURM cluster on 127.0.0.1 for the tests (Debian's slurmctld, slurmd, munge; run as root).
#   cluster.sh start DIR   writes DIR/slurm.conf, starts munged, slurmctld and slurmd, waits for the node
#   cluster.sh stop DIR    stops them
# Everything lives under DIR (keys, sockets, state, logs); export SLURM_CONF=DIR/slurm.conf to use it.
set -euo pipefail
cmd=${1:?start|stop}; dir=$(realpath -m "${2:?DIR}")
export SLURM_CONF=$dir/slurm.conf

stop() {
  # cancel this cluster's jobs first: job steps (slurmstepd, srun) outlive the daemons otherwise
  if [ -f "$dir"/slurmctld.pid ] && kill -0 "$(cat "$dir"/slurmctld.pid)" 2>/dev/null; then
    scancel --quiet --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 1 20); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  pids=$(cat "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munged.pid 2>/dev/null || true)
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  # wait for the daemons to exit (observed, at most 5 s), then SIGKILL any left
  for _ in $(seq 1 50); do
    alive=""  # a zombie (no init reaping it in a container) has exited
    for pid in $pids; do case "$(ps -o stat= -p "$pid" 2>/dev/null)" in ""|Z*) ;; *) alive=1;; esac; done
    [ -z "$alive" ] && break; sleep 0.1
  done
  for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
  rm -f "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munged.pid
}

if [ "$cmd" = stop ]; then stop; exit 0; fi

for exe in munged mungekey slurmctld slurmd sbatch; do
  command -v "$exe" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$exe" >/dev/null || { echo "cluster.sh: $exe is not installed (apt-get install slurmctld slurmd slurm-client munge)" >&2; exit 3; }
done
[ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root" >&2; exit 3; }
mkdir -p "$dir"/state "$dir"/spool "$dir"/munge
chmod 700 "$dir"/munge
[ -f "$dir"/munge/munge.key ] || mungekey --create --keyfile="$dir"/munge/munge.key
chmod 600 "$dir"/munge/munge.key
munged --force --key-file="$dir"/munge/munge.key --socket="$dir"/munge/munge.socket \
  --pid-file="$dir"/munged.pid --log-file="$dir"/munged.log --seed-file="$dir"/munge/munge.seed
cpus=$(nproc); mem=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > "$SLURM_CONF" <<CONF
ClusterName=loracfg-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: how long a revoked job credential blocks a requeued job from starting again (SLURM holds the job
# that long; default 120 s). 5 s lets a requeued test job restart by itself, without racing the revocation.
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=5
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
slurmctld -i
slurmd -N localhost
for _ in $(seq 1 60); do
  state=$(sinfo -h -o %T 2>/dev/null || true)
  case "$state" in idle*|mix*|alloc*) echo "cluster.sh: up ($state), SLURM_CONF=$SLURM_CONF"; exit 0;; esac
  sleep 0.5
done
echo "cluster.sh: the node did not come up; logs in $dir" >&2
tail -5 "$dir"/slurmctld.log "$dir"/slurmd.log >&2 || true
stop
exit 1
