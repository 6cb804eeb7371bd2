#!/usr/bin/env bash
# ci/cluster-sim/stop.sh [--nodes-only] -- stop the cluster simulator of start.sh:
# each sim node's slurmd (TERM, 5 s, KILL), then its PID 1 (node-init: the kernel
# kills what is left in the node's pid namespace, its jobs and bindfs daemons, and the
# node's mounts go with its mount namespace), then (unless --nodes-only) unmount the
# driver's views. Backing directories, wrappers and logs stay. Idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
ROOT="$SIM_ROOT"
RUN="$ROOT/run"
log() { echo "[cluster-sim/stop] $*"; }

. "$(dirname "$(readlink -f "$0")")/../lib.sh"  # pid_alive

stop_pid() {  # PIDFILE COMM
  local p
  pid_alive "$1" "$2" || { rm -f "$1"; return 0; }
  p="$(tr -dc '0-9' < "$1")"
  log "stopping $2 (pid $p, $(basename "$1" .pid))"
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 50); do pid_alive "$1" "$2" || break; sleep 0.1; done
  pid_alive "$1" "$2" && kill -KILL "$p" 2>/dev/null || true
  rm -f "$1"
}

[ "$(id -u)" = 0 ] || { echo "[cluster-sim/stop] ERROR: must run as root" >&2; exit 1; }
for f in "$RUN"/node-*.pid; do
  [ -e "$f" ] || continue
  node="$(basename "$f" .pid)"; node="${node#node-}"
  stop_pid "$RUN/slurmd-$node.pid" slurmd
  rm -f "$RUN/slurmd-$node.conf.sha"
  stop_pid "$f" node-init
done
if [ "${1:-}" != --nodes-only ]; then
  for p in $SIM_PROFILES; do
    target="$ROOT/shared/$p"
    if mountpoint -q "$target" 2>/dev/null || ! stat "$target" >/dev/null 2>&1; then
      log "unmounting $target"
      fusermount -u "$target" 2>/dev/null || fusermount -uz "$target" 2>/dev/null \
        || umount -l "$target" || true
    fi
    rm -f "$RUN/view-$p.opts"
  done
fi
log "stopped"
