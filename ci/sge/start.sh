#!/usr/bin/env bash
# ci/sge/start.sh -- install (if missing) and start a single-host Son of Grid
# Engine 8.1.9 (Debian gridengine-master gridengine-exec gridengine-client) on
# this host, as root, without systemd. Idempotent: starts sge_qmaster and
# sge_execd only when they are not running, (re)applies the configuration,
# clears queue error states, waits for the queue, and ends with a smoke test
# (`qsub -sync y -b y /bin/true`). Coexists with ci/slurm/start.sh (SGE uses
# ports 6444/6445, Slurm 6817/6818).
#
# Env:
#   SGE_SLOTS    slots of the queue instance [8] (more than the cores is fine
#                for CI's trivial jobs)
#   SGE_QUEUE    queue name                  [all.q]
#   SGE_WAIT_S   seconds to wait per step    [120]
# The queue keeps the stock shell_start_mode posix_compliant on purpose.
# Stop with ci/sge/stop.sh (stops only what this script started).
set -euo pipefail

export SGE_ROOT=/var/lib/gridengine
export SGE_CELL=default
HOST="$(hostname)"
SLOTS="${SGE_SLOTS:-8}"
QUEUE="${SGE_QUEUE:-all.q}"
WAIT_S="${SGE_WAIT_S:-120}"
COMMON="$SGE_ROOT/$SGE_CELL/common"
QM_SPOOL=/var/spool/gridengine/qmaster
EX_SPOOL=/var/spool/gridengine/execd
QM_PID="$QM_SPOOL/qmaster.pid"
RUN=/var/spool/gridengine-ci      # our pid copies: what this script started
WORK="$RUN/cfg"                   # scratch for qconf files

log() { echo "[sge/start] $*"; }
die() {
  echo "[sge/start] ERROR: $*" >&2
  local f
  for f in "$QM_SPOOL/messages" "$EX_SPOOL"/*/messages; do
    [ -r "$f" ] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

. "$(dirname "$(readlink -f "$0")")/../lib.sh"  # pid_alive

# execd names its spool directory after its *resolved* host name (may be
# "localhost"), so look in every subdirectory.
execd_pidfile() {
  local f
  for f in "$EX_SPOOL"/*/execd.pid; do
    pid_alive "$f" sge_execd && { echo "$f"; return 0; }
  done
  return 1
}

install_packages() {
  [ -x /usr/sbin/sge_qmaster ] && [ -x /usr/sbin/sge_execd ] \
    && command -v qsub >/dev/null && return 0
  log "installing gridengine-master gridengine-exec gridengine-client"
  local pkg
  for pkg in gridengine-common gridengine-client gridengine-master; do
    debconf-set-selections <<EOF
$pkg shared/gridenginemaster string $HOST
$pkg shared/gridengineconfig boolean true
$pkg shared/gridenginecell string default
EOF
  done
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 gridengine-master gridengine-exec gridengine-client
  [ -e /var/spool/gridengine/spooldb/sge ] \
    || die "spool DB not initialised (the package's post-install did not build the cell)"
}

# Host name trap: `hostname` resolves to 127.0.0.1, which resolves back to
# "localhost"; without an alias qmaster rejects every client ("access denied
# ... not identical to clients host name").
fix_host_aliases() {
  local aliases="$HOST" n
  for n in localhost localhost.localdomain $(getent hosts 127.0.0.1 | cut -d' ' -f2-); do
    [ "$n" = "$HOST" ] && continue
    case " $aliases " in *" $n "*) ;; *) aliases="$aliases $n" ;; esac
  done
  echo "$aliases" > "$COMMON/host_aliases"
  chown sgeadmin:sgeadmin "$COMMON/host_aliases"
  install -d -o sgeadmin -g sgeadmin /run/gridengine
}

start_qmaster() {
  if pid_alive "$QM_PID" sge_qmaster; then
    log "sge_qmaster already running (pid $(cat "$QM_PID"))"
  else
    echo "$HOST" > "$COMMON/act_qmaster"
    chown sgeadmin:sgeadmin "$COMMON/act_qmaster"
    rm -f "$QM_SPOOL/lock"
    log "starting sge_qmaster"
    /usr/sbin/sge_qmaster </dev/null >/dev/null 2>&1 || die "sge_qmaster failed to start"
    for _ in $(seq 50); do pid_alive "$QM_PID" sge_qmaster && break; sleep 0.1; done
    pid_alive "$QM_PID" sge_qmaster || die "sge_qmaster exited"
    cp "$QM_PID" "$RUN/sge_qmaster.pid"
  fi
  for i in $(seq "$WAIT_S"); do
    qconf -sh >/dev/null 2>&1 && return 0
    [ "$i" = "$WAIT_S" ] && die "qmaster not answering after ${WAIT_S}s"
    sleep 1
  done
}

# edit_conf FILE SED-ARGS...: set "key value" lines in a qconf dump
edit_conf() { local f="$1"; shift; sed -i "$@" "$f"; }

# set_conf_line FILE KEY VALUE: replace the KEY line of a qconf dump, with the
# continuation lines ("\" at the end) qconf -sconf breaks long values into
set_conf_line() {
  awk -v key="$2" -v value="$3" '
    skip { skip = /\\$/; next }
    $1 == key { printf "%-29s%s\n", key, value; skip = /\\$/; next }
    { print }' "$1" > "$1.new" && mv "$1.new" "$1"
}

# qacct reads the accounting file; accounting_flush_time=00:00:00 writes each record
# when the job ends (flush_time, which it defaults to, would buffer them)
REPORTING_PARAMS="accounting=true reporting=false flush_time=00:00:01 accounting_flush_time=00:00:00 joblog=false sharelog=00:00:00"

configure() {
  qconf -sh 2>/dev/null | grep -qx "$HOST" || qconf -ah "$HOST" >/dev/null 2>&1
  qconf -ss 2>/dev/null | grep -qx "$HOST" || qconf -as "$HOST" >/dev/null 2>&1

  # global: allow root jobs (stock min_uid/min_gid 1000); write accounting records
  # at once (stock: buffered for flush_time=15 s, so qacct learnt of a job up to
  # 15 s after its end), flush the (disabled) reporting file every second
  qconf -sconf global > "$WORK/global"
  edit_conf "$WORK/global" -e 's/^min_uid .*/min_uid                      0/' \
    -e 's/^min_gid .*/min_gid                      0/'
  set_conf_line "$WORK/global" reporting_params "$REPORTING_PARAMS"
  qconf -Mconf "$WORK/global" >/dev/null 2>&1 || die "qconf -Mconf global failed"
  local applied
  applied="$(qconf -sconf global)"
  grep -q 'accounting_flush_time=00:00:00' <<<"$applied" \
    || die "reporting_params not applied: $(grep -A3 reporting_params <<<"$applied")"

  # scheduler: fast turnaround (stock schedule_interval 0:0:15)
  qconf -ssconf > "$WORK/sconf"
  edit_conf "$WORK/sconf" -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
    -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
    -e 's/^flush_finish_sec .*/flush_finish_sec                  1/'
  qconf -Msconf "$WORK/sconf" >/dev/null 2>&1 || die "qconf -Msconf failed"

  if ! qconf -sel 2>/dev/null | grep -qx "$HOST"; then
    printf '%-22s%s\n' hostname "$HOST" load_scaling NONE complex_values NONE \
      user_lists NONE xuser_lists NONE projects NONE xprojects NONE \
      usage_scaling NONE report_variables NONE > "$WORK/exechost"
    qconf -Ae "$WORK/exechost" >/dev/null 2>&1 || die "qconf -Ae failed"
  fi

  # queue from the stock template: no missing PEs, no load alarm on 2 busy
  # cores, our slots; shell_start_mode stays the stock posix_compliant
  qconf -sq > "$WORK/queue"
  edit_conf "$WORK/queue" -e "s/^qname .*/qname                 $QUEUE/" \
    -e "s/^hostlist .*/hostlist              $HOST/" \
    -e "s/^slots .*/slots                 $SLOTS/" \
    -e 's/^load_thresholds .*/load_thresholds       NONE/' \
    -e 's/^pe_list .*/pe_list               NONE/' \
    -e 's/^shell_start_mode .*/shell_start_mode      posix_compliant/'
  if qconf -sql 2>/dev/null | grep -qx "$QUEUE"; then
    qconf -Mq "$WORK/queue" >/dev/null 2>&1 || die "qconf -Mq failed"
  else
    qconf -Aq "$WORK/queue" >/dev/null 2>&1 || die "qconf -Aq failed"
  fi
}

start_execd() {
  local f
  if f="$(execd_pidfile)"; then
    log "sge_execd already running (pid $(cat "$f"))"; return 0
  fi
  log "starting sge_execd"
  /usr/sbin/sge_execd </dev/null >/dev/null 2>&1 || die "sge_execd failed to start"
  for _ in $(seq 100); do f="$(execd_pidfile)" && break; sleep 0.1; done
  [ -n "$f" ] || die "sge_execd exited"
  cp "$f" "$RUN/sge_execd.pid"
}

# the queue instance is ready when it reports a load and has no state flags
wait_queue() {
  local qi="$QUEUE@$HOST" line=""
  qmod -c "$qi" >/dev/null 2>&1 || true      # clear E state of earlier runs
  qmod -e "$qi" >/dev/null 2>&1 || true
  for i in $(seq "$WAIT_S"); do
    # columns: queuename qtype resv/used/tot load_avg arch [states]
    line="$(qstat -f -q "$qi" 2>/dev/null | awk -v q="$qi" '$1 == q' || true)"
    if [ -n "$line" ] && [ "$(awk '{print NF}' <<<"$line")" -eq 5 ] \
       && [ "$(awk '{print $4}' <<<"$line")" != "-NA-" ]; then
      log "queue ready: $line"; return 0
    fi
    [ "$i" = "$WAIT_S" ] && { qstat -f >&2 || true; die "queue $qi not ready after ${WAIT_S}s: '$line'"; }
    sleep 1
  done
}

smoke_test() {
  timeout 90 qsub -sync y -b y -N ci-smoke -o /dev/null -e /dev/null /bin/true \
    || die "smoke test 'qsub -sync y -b y /bin/true' failed"
  log "smoke test passed"
}

main() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  [[ "$SLOTS" =~ ^[1-9][0-9]*$ ]] || die "SGE_SLOTS must be a positive integer"
  install_packages
  mkdir -p "$RUN" "$WORK"
  fix_host_aliases
  start_qmaster
  configure
  start_execd
  wait_queue
  smoke_test
  log "up: sge_qmaster $(cat "$QM_PID"), sge_execd $(cat "$(execd_pidfile)")"
}

main "$@"
