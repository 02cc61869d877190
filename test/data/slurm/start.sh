#!/usr/bin/env bash
# Starts a single-node Slurm (munge, slurmctld, slurmd) for the data pipeline's Slurm executor test, as
# described in shared/notes/slurm.md: root, no cgroups, one partition. Idempotent: does nothing if `sinfo`
# already answers. Needs Debian's slurm-wlm and munge installed (.ci/run installs them). PIDs are written
# to /run/herd-slurm/*.pid so stop.sh ends exactly these daemons.
set -euo pipefail
if sinfo -h >/dev/null 2>&1; then echo "slurm: already running"; exit 0; fi
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) * 8 / 10 ))
state=/var/spool/herd-slurm
mkdir -p /etc/slurm "$state/ctld" "$state/d" /run/herd-slurm /run/munge /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=herd
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=/run/herd-slurm/slurmctld.pid
SlurmdPidFile=/run/herd-slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerParameters=sched_interval=1,sched_min_interval=100000,bf_interval=1
MinJobAge=60
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
if [ ! -f /etc/munge/munge.key ]; then mungekey -c -f -k /etc/munge/munge.key; fi
chown munge:munge /etc/munge/munge.key /run/munge
chmod 400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- munged --pid-file=/run/munge/munged.pid
  cp /run/munge/munged.pid /run/herd-slurm/munged.pid 2>/dev/null || true
fi
slurmctld
slurmd
for _ in $(seq 1 30); do
  if sinfo -h -o %T 2>/dev/null | grep -q idle; then echo "slurm: node $host idle"; exit 0; fi
  sleep 1
done
echo "slurm: node did not become idle" >&2
sinfo >&2 || true
exit 1
