#!/usr/bin/env bash
# ci/slurm/stop.sh -- stop only the daemons ci/slurm/start.sh started, by the
# pid files it keeps under $SLURM_LOCAL_ROOT/run (munged and mariadbd only if
# start.sh started them). Bounded: TERM, up to 10 s, then KILL. Leaves packages, config
# and state in place, so start.sh brings the same cluster back.
set -euo pipefail
ROOT="${SLURM_LOCAL_ROOT:-/var/spool/slurm-local}"

log() { echo "[slurm/stop] $*"; }

. "$(dirname "$(readlink -f "$0")")/../lib.sh"  # pid_alive

stop_one() {  # stop_one PIDFILE COMM
  local p
  if ! pid_alive "$1" "$2"; then
    log "$2 not running"; rm -f "$1"; return 0
  fi
  p="$(tr -dc '0-9' < "$1")"
  log "stopping $2 (pid $p)"
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do pid_alive "$1" "$2" || break; sleep 0.1; done
  if pid_alive "$1" "$2"; then log "$2: SIGKILL $p"; kill -KILL "$p" 2>/dev/null || true; fi
  rm -f "$1"
}

stop_one "$ROOT/run/slurmd.pid" slurmd
stop_one "$ROOT/run/slurmctld.pid" slurmctld
stop_one "$ROOT/run/slurmdbd.pid" slurmdbd
stop_one "$ROOT/run/mariadbd.pid" mariadbd
stop_one "$ROOT/run/munged.pid" munged
