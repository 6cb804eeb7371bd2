#!/usr/bin/env bash
# ci/pbs/install.sh -- Slurm's own Torque/PBS wrappers (Debian's slurm-wlm-torque:
# qsub, qstat, qdel, pbsnodes, ...) unpacked into a private prefix, so that they
# run against the real Slurm of ci/slurm/start.sh without replacing SGE's qsub.
#
# slurm-wlm-torque conflicts with gridengine-client (both own /usr/bin/qsub), so
# the package is not installed: it is downloaded and unpacked with dpkg-deb -x,
# its Perl dependencies are installed normally, and links to Slurm's sbatch,
# squeue, scancel and scontrol are put beside the wrappers (they run them from
# their own directory). Idempotent; ends with a smoke test (qsub, qstat -f, qdel).
#
# Env:
#   PBS_WRAPPER_PREFIX   where to unpack  [/opt/slurm-torque]; the wrappers end up
#                        in $PBS_WRAPPER_PREFIX/usr/bin
#   PBS_WAIT_S           seconds to wait for the smoke job [60]
set -euo pipefail

PREFIX="${PBS_WRAPPER_PREFIX:-/opt/slurm-torque}"
WAIT_S="${PBS_WAIT_S:-60}"
BIN="$PREFIX/usr/bin"

log() { echo "[pbs/install] $*"; }
die() { echo "[pbs/install] ERROR: $*" >&2; exit 1; }

command -v sbatch >/dev/null || die "Slurm is not installed: run ci/slurm/start.sh first"

perl_deps() {
  perl -MSlurm -MSlurmdb -MSwitch -e 1 2>/dev/null && return 0
  log "installing libslurm-perl libslurmdb-perl libswitch-perl"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 libslurm-perl libslurmdb-perl libswitch-perl
}

unpack_wrappers() {
  [ -x "$BIN/qsub" ] && [ -x "$BIN/qstat" ] && [ -x "$BIN/qdel" ] && return 0
  log "unpacking slurm-wlm-torque into $PREFIX"
  local tmp
  tmp="$(mktemp -d)"
  chown _apt "$tmp" 2>/dev/null || true   # apt downloads as _apt where it can
  (cd "$tmp" && apt-get download slurm-wlm-torque) \
    || { apt-get update -q && (cd "$tmp" && apt-get download slurm-wlm-torque); }
  mkdir -p "$PREFIX"
  dpkg-deb -x "$tmp"/slurm-wlm-torque_*.deb "$PREFIX"
  rm -rf "$tmp"
  [ -x "$BIN/qsub" ] || die "no $BIN/qsub in the package"
}

link_slurm_commands() {
  local program target
  for program in sbatch squeue scancel scontrol salloc srun sinfo; do
    target="$(command -v "$program" || true)"
    [ -n "$target" ] || continue
    ln -sfn "$target" "$BIN/$program"
  done
}

smoke_test() {
  local out job i
  out="$(mktemp -d)"
  # the wrapper takes the job script as a file, never on stdin
  printf '#!/bin/sh\necho pbs-smoke\n' > "$out/smoke.sh"
  job="$("$BIN/qsub" -N bp-pbs-smoke -l walltime=00:01:00 -o "$out/smoke.out" \
    -e "$out/smoke.err" "$out/smoke.sh")" || die "qsub failed: $job"
  job="$(echo "$job" | tr -d '[:space:]')"
  log "smoke job $job"
  for ((i = 0; i < WAIT_S; i++)); do
    [ -s "$out/smoke.out" ] && break
    sleep 1
  done
  grep -q pbs-smoke "$out/smoke.out" || die "the smoke job wrote nothing in ${WAIT_S}s"
  "$BIN/qstat" -f "$job" >/dev/null || die "qstat -f $job failed"
  "$BIN/qdel" "$job" >/dev/null 2>&1 || true
  rm -rf "$out"
  log "ok: qsub, qstat -f, qdel in $BIN"
}

perl_deps
unpack_wrappers
link_slurm_commands
smoke_test
