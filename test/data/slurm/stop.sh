#!/usr/bin/env bash
# Stops the daemons start.sh started, by the PIDs it recorded.
for d in slurmd slurmctld munged; do
  f=/run/herd-slurm/$d.pid
  [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
done
