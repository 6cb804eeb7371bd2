# ci/cluster-sim/lib.sh -- settings shared by start.sh, stop.sh, node-init and
# node-python (sourced; start.sh copies it to $BATCHPOOL_SIM_ROOT/bin beside them).
SIM_ROOT="${BATCHPOOL_SIM_ROOT:-/var/tmp/batchpool-sim}"
SIM_PROFILES="coherent nfs nfs-slow"     # caching bindfs views; plus "notshared"
SIM_SLURM_ROOT="${SLURM_LOCAL_ROOT:-/var/spool/slurm-local}"

# profile_opts PROFILE: the bindfs -o options of a profile's views
profile_opts() {
  local t
  case "$1" in
    coherent) t=0 ;;      # no caching at all: Lustre/GPFS-like
    nfs)      t=30 ;;     # Linux NFS acdirmin (30 s)
    nfs-slow) t=60 ;;
    *) echo "unknown profile '$1' (known: $SIM_PROFILES notshared)" >&2; return 1 ;;
  esac
  echo "entry_timeout=$t,negative_timeout=$t,attr_timeout=$t"
}

# mount_view PROFILE: (re)mount, over $SIM_ROOT/shared/PROFILE, a bindfs view of its
# backing directory with its own kernel cache; notshared: an empty private tmpfs.
# Meant for a private mount namespace (node-init); start.sh mounts the driver's views.
mount_view() {
  local profile="$1" target="$SIM_ROOT/shared/$1"
  # drop the copy of the driver's view this namespace inherited (only here: private)
  while mountpoint -q "$target" 2>/dev/null; do umount -l "$target" || break; done
  mkdir -p "$target"
  if [ "$profile" = notshared ]; then
    mount -t tmpfs -o size=256m,mode=0777 "node-notshared" "$target"
  else
    bindfs -o "$(profile_opts "$profile")" "$SIM_ROOT/back/$profile" "$target"
  fi
}
