#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, to try `dit sweep --slurm` (and for its test):
#   scripts/slurm-local.sh start   installs Debian's slurmctld, slurmd, slurm-client and munge
#                                  when missing (root), starts munged, slurmctld and slurmd
#   scripts/slurm-local.sh stop    stops the three daemons
#   scripts/slurm-local.sh env     prints the line to give sbatch/squeue this cluster
# Its config, state and logs live in $DIT_SLURM_DIR (default /tmp/dit-slurm); clients find
# the cluster through SLURM_CONF=$DIT_SLURM_DIR/slurm.conf (nothing is written to /etc/slurm).
set -euo pipefail
DIR="${DIT_SLURM_DIR:-/tmp/dit-slurm}"
CONF="$DIR/slurm.conf"
MUNGE_DIR="$DIR/munge"

need_root() { [ "$(id -u)" -eq 0 ] || { echo "slurm-local.sh: $1 needs root (sudo)" >&2; exit 1; }; }

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null && return
  need_root 'installing Slurm'
  echo "installing slurmctld slurmd slurm-client munge (apt-get)"
  # Keep the packages' own services from starting: this script starts its own daemons.
  local guard=/usr/sbin/policy-rc.d made=''
  if [ ! -e "$guard" ]; then printf '#!/bin/sh\nexit 101\n' > "$guard"; chmod +x "$guard"; made=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge
  if [ -n "$made" ]; then rm -f "$guard"; fi
}

write_conf() {
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  mkdir -p "$DIR/state" "$DIR/spool" "$MUNGE_DIR"
  cat > "$CONF" <<CONF
ClusterName=dit-local
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$MUNGE_DIR/munge.socket.2
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# A task stopped by SIGTERM near its limit (exit 75) requeues itself; so may the cluster.
RequeueExit=75
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

up() { [ -f "$CONF" ] && SLURM_CONF="$CONF" sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }

start() {
  if up; then echo "one-node Slurm already up: export SLURM_CONF=$CONF"; return; fi
  install
  need_root 'starting the daemons'
  write_conf
  [ -f /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
  chown -R munge: /etc/munge "$MUNGE_DIR" 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  if ! [ -S "$MUNGE_DIR/munge.socket.2" ]; then
    runuser -u munge -- munged --socket="$MUNGE_DIR/munge.socket.2" --pid-file="$MUNGE_DIR/munged.pid" \
      --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
  fi
  SLURM_CONF="$CONF" slurmctld
  SLURM_CONF="$CONF" slurmd
  for _ in $(seq 60); do
    if up; then
      echo "one-node Slurm up: export SLURM_CONF=$CONF"
      return
    fi
    sleep 1
  done
  echo "slurm-local.sh: the node did not come up; logs: $DIR/slurmctld.log, $DIR/slurmd.log" >&2
  exit 1
}

stop_pid() {
  local file="$1" name="$2" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $name ($pid)"
  fi
  rm -f "$file"
}

stop() {
  stop_pid "$DIR/slurmd.pid" slurmd
  stop_pid "$DIR/slurmctld.pid" slurmctld
  stop_pid "$MUNGE_DIR/munged.pid" munged
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: scripts/slurm-local.sh start|stop|env" >&2; exit 2 ;;
esac
