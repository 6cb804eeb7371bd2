#!/usr/bin/env bash
# ci/slurm/start.sh -- install (if missing) and start Slurm 22.05 with accounting
# (Debian slurmctld slurmd slurmdbd slurm-client munge mariadb-server) on this host,
# as root, without systemd. Idempotent: run again while all is up, it only re-checks.
# Ends with a smoke test (`sbatch --wait --wrap true`, then `sacct -j` of that job).
# Coexists with ci/sge/start.sh (Slurm uses ports 6817/6818/6819, MariaDB 3306 on
# 127.0.0.1, SGE 6444/6445).
#
# Accounting: MariaDB (database slurm_acct_db, user slurm) and slurmdbd; the cluster
# "local" is registered with sacctmgr, so `sacct -j ID` answers for every job.
# Memory: task/cgroup with ConstrainRAMSpace=yes (the cgroup v1 memory controller at
# /sys/fs/cgroup/memory): a job above its --mem is killed by the kernel's OOM killer
# and ends OUT_OF_MEMORY. Jobs without --mem get DefMemPerCPU = the host's memory,
# and RealMemory is CPUs times that, so memory never limits how many jobs run.
# SlurmdTimeout=15: a dead slurmd makes the node DOWN (NODE_FAIL, requeue) within
# ~30 s. See ci/README.md.
#
# Env:
#   SLURM_LOCAL_ROOT       state/spool/log/pid directory  [/var/spool/slurm-local]
#   SLURM_LOCAL_CPUS       CPUs advertised for the node    [16] (more than the
#                          cores: more job slots, ~1 job start/s per slot)
#   SLURM_LOCAL_MAX_ARRAY  MaxArraySize                    [101] (small, so CI
#                          exercises splitting of large arrays)
#   SLURM_LOCAL_WAIT_S     seconds to wait for the node    [60]
#   SLURM_SIM_NODES        extra nodes sim1..simN in partition "sim" for the cluster
#                          simulator [3] (0: none). Only declared here (4 CPUs each,
#                          Port 6920+i, NodeHostname this host); their slurmds are
#                          started, each in its own namespaces, by ci/cluster-sim/start.sh.
#                          Partition "local" (default) keeps only this host's node.
# Stop with ci/slurm/stop.sh (stops only what this script started).
set -euo pipefail

ROOT="${SLURM_LOCAL_ROOT:-/var/spool/slurm-local}"
CPUS="${SLURM_LOCAL_CPUS:-16}"
MAX_ARRAY="${SLURM_LOCAL_MAX_ARRAY:-101}"
WAIT_S="${SLURM_LOCAL_WAIT_S:-60}"
SIM_NODES="${SLURM_SIM_NODES:-3}"
SIM_CPUS=4
SIM_PORT0=6920
HOST="$(hostname -s)"
CONF=/etc/slurm/slurm.conf
MUNGE_SOCK=/run/munge/munge.socket.2
MUNGE_PID=/run/munge/munged.pid
RUN="$ROOT/run"
CTLD_PID="$RUN/slurmctld.pid"
SLURMD_PID="$RUN/slurmd.pid"
DBD_PID="$RUN/slurmdbd.pid"
DBD_CONF=/etc/slurm/slurmdbd.conf
CGROUP_CONF=/etc/slurm/cgroup.conf
DB_PID=/run/mysqld/mysqld.pid
OUR_DB_PID="$RUN/mariadbd.pid"     # exists only if this script started mariadbd
DB_PASS_FILE=/etc/slurm/.slurmdbd-db-pass
OUR_MUNGE_PID="$RUN/munged.pid"    # exists only if this script started munged

log() { echo "[slurm/start] $*"; }
die() {
  echo "[slurm/start] ERROR: $*" >&2
  local f
  for f in "$ROOT/log/slurmctld.log" "$ROOT/log/slurmd.log" "$ROOT/log/slurmdbd.log" \
    "$ROOT/log/mariadb.log" /var/log/munge/munged.log; do
    [ -r "$f" ] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

. "$(dirname "$(readlink -f "$0")")/../lib.sh"  # pid_alive

# stop_pid PIDFILE COMM: TERM, bounded wait (10 s), then KILL
stop_pid() {
  local p
  pid_alive "$1" "$2" || return 0
  p="$(tr -dc '0-9' < "$1")"
  log "stopping $2 (pid $p)"
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do pid_alive "$1" "$2" || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null \
    && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null && return 0
  log "installing slurmctld slurmd slurmdbd slurm-client munge mariadb-server"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 slurmctld slurmd slurmdbd slurm-client munge mariadb-server
}

db_ok() { mariadb-admin --protocol=socket ping >/dev/null 2>&1; }

start_mariadb() {  # the accounting database: mariadbd by hand (no systemd), user slurm
  if db_ok; then log "mariadbd already running"
  else
    log "starting mariadbd"
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null \
      || die "mariadb-install-db failed"
    # a daemon of its own session; it writes its pid file itself
    setsid /usr/sbin/mariadbd --user=mysql --pid-file="$DB_PID" \
      --log-error="$ROOT/log/mariadb.log" < /dev/null > /dev/null 2>&1 &
    for _ in $(seq 150); do db_ok && break; sleep 0.2; done
    db_ok || die "mariadbd does not answer"
    cp "$DB_PID" "$OUR_DB_PID"
  fi
  if [ ! -s "$DB_PASS_FILE" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$DB_PASS_FILE")
  fi
  mariadb --protocol=socket -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$(cat "$DB_PASS_FILE")';
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" \
    || die "cannot create the database user slurm"
}

# install_if_changed NEW DEST MODE: prints 1 if DEST changed, else 0
install_if_changed() {
  if cmp -s "$1" "$2"; then rm -f "$1"; echo 0; return 0; fi
  [ -f "$2" ] && cp -f "$2" "$2.bak"
  install -m "$3" "$1" "$2"
  rm -f "$1"
  echo 1
}

write_dbd_conf() {  # prints 1 if slurmdbd.conf changed, else 0
  local new
  new="$(mktemp)"
  cat > "$new" <<EOF
# generated by batchpool ci/slurm/start.sh -- accounting in the local MariaDB
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$(cat "$DB_PASS_FILE")
PidFile=${DBD_PID}
LogFile=${ROOT}/log/slurmdbd.log
DebugLevel=info
EOF
  install_if_changed "$new" "$DBD_CONF" 0600
}

dbd_ok() { sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1; }

start_slurmdbd() {  # after slurm.conf is written: sacctmgr reads it
  if pid_alive "$DBD_PID" slurmdbd; then
    log "slurmdbd already running (pid $(cat "$DBD_PID"))"
  else
    log "starting slurmdbd"
    rm -f "$DBD_PID"
    slurmdbd || die "slurmdbd failed to start"   # daemonizes
  fi
  for _ in $(seq 150); do dbd_ok && break; sleep 0.2; done
  dbd_ok || die "slurmdbd does not answer sacctmgr"
  if ! sacctmgr -n -P show cluster format=cluster | grep -qx local; then
    log "registering the cluster 'local' with slurmdbd"
    sacctmgr -i add cluster local >/dev/null || die "sacctmgr add cluster local failed"
  fi
}

write_cgroup_conf() {  # prints 1 if cgroup.conf changed, else 0
  local new
  new="$(mktemp)"
  cat > "$new" <<EOF
# generated by batchpool ci/slurm/start.sh -- the kernel enforces --mem (cgroup v1)
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainDevices=no
ConstrainRAMSpace=yes
AllowedRAMSpace=100
ConstrainSwapSpace=no
EOF
  install_if_changed "$new" "$CGROUP_CONF" 0644
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating munge key"
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key --force
  fi
  install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
  install -d -o munge -g munge -m 0711 /var/lib/munge
  install -d -o munge -g munge -m 0755 /run/munge
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  if munge_ok; then log "munged already running"; return 0; fi
  rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" --num-threads=4
  for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
  munge_ok || die "munged does not work"
  cp "$MUNGE_PID" "$OUR_MUNGE_PID"
}

write_conf() {  # prints 1 if slurm.conf changed, else 0
  local mem_mb new
  mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.95)}' /proc/meminfo)
  new="$(mktemp)"
  cat > "$new" <<EOF
# generated by batchpool ci/slurm/start.sh -- accounting in slurmdbd, --mem enforced
# by task/cgroup (cgroup v1, cgroup.conf); see ci/README.md
ClusterName=local
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=${mem_mb}
ReturnToService=2
SlurmdParameters=config_overrides
MaxArraySize=${MAX_ARRAY}
MaxJobCount=200000
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmdTimeout=15
Waittime=0
StateSaveLocation=${ROOT}/ctld
SlurmdSpoolDir=${ROOT}/d
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${ROOT}/log/slurmctld.log
SlurmdLogFile=${ROOT}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${HOST} NodeAddr=127.0.0.1 NodeHostname=${HOST} CPUs=${CPUS} Sockets=1 CoresPerSocket=${CPUS} ThreadsPerCore=1 RealMemory=$(( mem_mb * CPUS )) State=UNKNOWN
EOF
  if [ "$SIM_NODES" = 0 ]; then
    echo "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO" >> "$new"
  else
    # the cluster simulator's nodes (ci/cluster-sim/start.sh runs their slurmds)
    local i
    for ((i = 1; i <= SIM_NODES; i++)); do
      echo "NodeName=sim$i NodeAddr=127.0.0.1 NodeHostname=${HOST} Port=$(( SIM_PORT0 + i )) CPUs=${SIM_CPUS} Sockets=1 CoresPerSocket=${SIM_CPUS} ThreadsPerCore=1 RealMemory=$(( mem_mb * SIM_CPUS )) State=UNKNOWN" >> "$new"
    done
    echo "PartitionName=local Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO" >> "$new"
    echo "PartitionName=sim Nodes=sim[1-${SIM_NODES}] Default=NO MaxTime=INFINITE State=UP OverSubscribe=NO" >> "$new"
  fi
  install_if_changed "$new" "$CONF" 0644
}

start_slurmctld() {
  if pid_alive "$CTLD_PID" slurmctld; then
    log "slurmctld already running (pid $(cat "$CTLD_PID"))"; return 0
  fi
  log "starting slurmctld"
  rm -f "$CTLD_PID"
  slurmctld -i || die "slurmctld failed to start"   # daemonizes; -i: ignore unreadable old state
  for _ in $(seq 100); do
    scontrol ping 2>/dev/null | grep -q UP && return 0
    sleep 0.2
  done
  die "slurmctld not up"
}

start_slurmd() {
  if pid_alive "$SLURMD_PID" slurmd; then
    log "slurmd already running (pid $(cat "$SLURMD_PID"))"; return 0
  fi
  log "starting slurmd"
  rm -f "$SLURMD_PID"
  slurmd -N "$HOST" || die "slurmd failed to start"   # daemonizes
}

wait_idle() {
  local deadline st
  deadline=$(( $(date +%s) + WAIT_S ))
  while :; do
    st="$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -n 1 || true)"
    case "$st" in
      idle|mixed|allocated|completing) return 0 ;;
      drain*|down*|fail*|*drain|*drained)     # left over from an earlier run
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      sinfo -N -l >&2 || true
      die "node $HOST not idle after ${WAIT_S}s (state: '$st')"
    fi
    sleep 0.5
  done
}

smoke_test() {  # a job runs, and the accounting knows how it ended
  local out id st=""
  out="$(mktemp -d)"
  if ! id="$(timeout 60 sbatch --parsable --wait --job-name ci-smoke --output "$out/o" \
    --wrap true)"; then
    rm -rf "$out"
    die "smoke test 'sbatch --wait --wrap true' failed"
  fi
  rm -rf "$out"
  for _ in $(seq 50); do
    st="$(sacct -n -P -X -j "$id" -o State 2>/dev/null || true)"
    [ "$st" = COMPLETED ] && break
    sleep 0.2
  done
  [ "$st" = COMPLETED ] || die "sacct -j $id: '$st', not COMPLETED"
  log "smoke test passed (job $id, sacct: $st)"
}

main() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  [[ "$CPUS" =~ ^[1-9][0-9]*$ && "$MAX_ARRAY" =~ ^[1-9][0-9]*$ ]] \
    || die "SLURM_LOCAL_CPUS and SLURM_LOCAL_MAX_ARRAY must be positive integers"
  [[ "$SIM_NODES" =~ ^[0-9]$ ]] || die "SLURM_SIM_NODES must be 0..9"
  install_packages
  mkdir -p /etc/slurm "$ROOT"/ctld "$ROOT"/d "$ROOT"/log "$RUN"
  start_munge
  local changed=0
  [ "$(write_cgroup_conf)" = 1 ] && { log "wrote $CGROUP_CONF"; changed=1; }
  [ "$(write_conf)" = 1 ] && { log "wrote $CONF"; changed=1; }
  start_mariadb
  if [ "$(write_dbd_conf)" = 1 ]; then
    log "wrote $DBD_CONF"
    stop_pid "$DBD_PID" slurmdbd
  fi
  start_slurmdbd   # before slurmctld, which registers with it
  if [ "$changed" = 1 ]; then
    # node and array settings need a restart of our daemons
    stop_pid "$SLURMD_PID" slurmd
    stop_pid "$CTLD_PID" slurmctld
  fi
  start_slurmctld
  start_slurmd
  wait_idle
  smoke_test
  log "up: munged $(cat "$MUNGE_PID" 2>/dev/null || echo '?'), mariadbd $(cat "$DB_PID" 2>/dev/null || echo '?'), slurmdbd $(cat "$DBD_PID"), slurmctld $(cat "$CTLD_PID"), slurmd $(cat "$SLURMD_PID")"
  sinfo
}

main "$@"
