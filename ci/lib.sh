# ci/lib.sh -- shell functions the ci/ scripts share (sourced).

# pid_alive PIDFILE COMM: the pid in PIDFILE runs COMM and is not a zombie
# (PID 1 here reaps orphans lazily: a killed daemon lingers as Z with its name).
pid_alive() {
  local p
  [ -s "$1" ] || return 1
  p="$(tr -dc '0-9' 2>/dev/null < "$1")"  # the daemon may remove it as it exits
  [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] \
    && ! grep -qE '^State:[[:space:]]+[ZX]' "/proc/$p/status" 2>/dev/null
}
