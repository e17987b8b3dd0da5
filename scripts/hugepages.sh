#!/usr/bin/env bash
# Reserves N 2 MiB hugepages (default 1024) and mounts hugetlbfs on /dev/hugepages.
# Idempotent; needs root. Used by setup.sh and by the systemd unit (ExecStartPre).
set -euo pipefail

HUGEPAGES=${1:-${DSRLB_HUGEPAGES:-1024}}
nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w "$nr" ] && [ "$(cat "$nr")" -lt "$HUGEPAGES" ]; then
  echo "$HUGEPAGES" > "$nr" || true
fi
if [ -e "$nr" ] && [ "$(cat "$nr")" -lt "$HUGEPAGES" ]; then
  echo "hugepages.sh: warning: only $(cat "$nr") hugepages of 2 MiB reserved ($HUGEPAGES wanted)" >&2
fi
if ! mountpoint -q /dev/hugepages 2>/dev/null; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null \
    || echo "hugepages.sh: warning: cannot mount hugetlbfs on /dev/hugepages" >&2
fi
