#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, for tests/test_slurm.py: installs Debian's
# slurm-wlm and munge when missing, writes /etc/slurm/slurm.conf, starts munged,
# slurmctld and slurmd, and waits until `srun hostname` runs. Idempotent: a cluster
# already running from the same slurm.conf is left alone. Needs root.
#
# No accounting daemon: `sacct` cannot answer, so the executor plugin polls with
# `--slurm-status-command squeue`, and MinJobAge keeps finished jobs visible to squeue.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
TIMEOUT=${SLURM_START_TIMEOUT:-60}

say() { echo "start_slurm: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (installs packages, runs the daemons as root)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
  || ! command -v munged >/dev/null || ! command -v sinfo >/dev/null; then
  command -v apt-get >/dev/null || die "no apt-get: install slurm-wlm and munge by hand"
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# --- munge: shared-secret authentication between the SLURM daemons -------------------
mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
  else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  runuser -u munge -- munged --force
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
  munge -n | unmunge >/dev/null 2>&1 || die "munged does not answer"
fi

# --- slurm.conf: one node, this machine ------------------------------------------------
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
# Memory is not a consumable here (CR_CPU) and nothing enforces it; the node only has
# to be big enough on paper for the rules' mem_mb requests (up to 16 GB for labels), so
# a small machine declares 32 GB and config_overrides keeps slurmd from draining it.
[ "$MEM_MB" -ge 32768 ] || MEM_MB=32768
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
cat >"$CONF.new" <<CONF
# Written by tests/slurm/start_slurm.sh: a one-node test cluster on localhost.
ClusterName=whisper-mxq-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to squeue this long (the plugin polls with squeue).
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

node_state() { sinfo -h -n localhost -o '%t' 2>/dev/null | head -n1; }
running() { [ -s "/run/slurm/$1.pid" ] && kill -0 "$(cat "/run/slurm/$1.pid")" 2>/dev/null; }
stop() {  # a daemon of ours started from another slurm.conf, by its pid file
  local pid
  pid=$(cat "/run/slurm/$1.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  die "$1 (pid $pid) did not stop"
}

if cmp -s "$CONF.new" "$CONF" && running slurmctld && running slurmd \
  && [[ "$(node_state)" =~ ^(idle|mix|alloc|comp)$ ]]; then
  rm -f "$CONF.new"
  say "already up: $(sinfo -h -o '%P %N %t %c CPUs %m MB')"
  exit 0
fi
if ! cmp -s "$CONF.new" "$CONF"; then
  mv "$CONF.new" "$CONF"
  stop slurmd
  stop slurmctld
else
  rm -f "$CONF.new"
fi

# --- the daemons -----------------------------------------------------------------------
if ! running slurmctld; then
  say "starting slurmctld"
  slurmctld -i   # -i: ignore state saved by an earlier, differently configured run
fi
if ! running slurmd; then
  say "starting slurmd"
  slurmd -N localhost
fi

deadline=$((SECONDS + TIMEOUT))
until [[ "$(node_state)" =~ ^(idle|mix|alloc|comp)$ ]]; do
  if [ $SECONDS -ge $deadline ]; then
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    die "node did not come up within ${TIMEOUT}s: $(sinfo 2>&1 | tail -n +2)"
  fi
  # A node left DOWN or DRAINED by an earlier run comes back once told to.
  if [[ "$(node_state)" =~ ^(down|drain|drng|inval) ]]; then
    scontrol update NodeName=localhost State=RESUME 2>/dev/null || true
  fi
  sleep 1
done
timeout 60 srun -N1 -n1 -t 1 hostname >/dev/null || die "srun hostname failed"
say "up: $(sinfo -h -o '%P %N %t %c CPUs %m MB')"
