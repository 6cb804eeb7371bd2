#!/usr/bin/env bash
# ci/sge/stop.sh -- stop only the SGE daemons ci/sge/start.sh started (it
# keeps copies of their pid files in /var/spool/gridengine-ci). Asks SGE first
# (qconf -ke / -km), then TERM and KILL, each wait bounded. Running jobs are
# left alone unless --kill-jobs (qconf -kej). Packages, config and spool stay.
set -euo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
HOST="$(hostname)"
RUN=/var/spool/gridengine-ci

log() { echo "[sge/stop] $*"; }

. "$(dirname "$(readlink -f "$0")")/../lib.sh"  # pid_alive

wait_gone() {  # wait_gone PIDFILE COMM SECONDS
  for _ in $(seq $(( $3 * 10 ))); do pid_alive "$1" "$2" || return 0; sleep 0.1; done
  return 1
}

stop_one() {  # stop_one PIDFILE COMM QCONF-ARGS...
  local f="$1" comm="$2" p
  shift 2
  if ! pid_alive "$f" "$comm"; then log "$comm not running (or not ours)"; rm -f "$f"; return 0; fi
  p="$(tr -dc '0-9' < "$f")"
  log "stopping $comm (pid $p)"
  qconf "$@" >/dev/null 2>&1 || true
  wait_gone "$f" "$comm" 20 || { log "$comm: SIGTERM $p"; kill -TERM "$p" 2>/dev/null || true; }
  wait_gone "$f" "$comm" 5 || { log "$comm: SIGKILL $p"; kill -KILL "$p" 2>/dev/null || true; }
  rm -f "$f"
}

if [ "${1:-}" = "--kill-jobs" ]; then ke=-kej; else ke=-ke; fi
stop_one "$RUN/sge_execd.pid" sge_execd "$ke" "$HOST"
stop_one "$RUN/sge_qmaster.pid" sge_qmaster -km
