#!/usr/bin/env bash
# Installs a built dsrlb (cargo build --release) as a systemd service:
#   /usr/local/bin/dsrlb, /usr/local/lib/dsrlb/hugepages.sh,
#   /etc/systemd/system/dsrlb.service, and /etc/dsrlb/dsrlb.toml if there is none
#   (a copy of config/examples/dsrlb.toml to edit).
# DESTDIR=/some/root installs under that root instead (for packaging and tests);
# DSRLB_BIN=path installs that binary.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
ROOT=${DESTDIR:-}
BIN=${DSRLB_BIN:-"$REPO/target/release/dsrlb"}
[ -x "$BIN" ] || { echo "install.sh: build first: cargo build --release" >&2; exit 1; }

install -D -m 0755 "$BIN" "$ROOT/usr/local/bin/dsrlb"
install -D -m 0755 "$HERE/hugepages.sh" "$ROOT/usr/local/lib/dsrlb/hugepages.sh"
install -D -m 0644 "$HERE/dsrlb.service" "$ROOT/etc/systemd/system/dsrlb.service"
if [ ! -e "$ROOT/etc/dsrlb/dsrlb.toml" ]; then
  install -D -m 0600 "$REPO/config/examples/dsrlb.toml" "$ROOT/etc/dsrlb/dsrlb.toml"
  echo "install.sh: edit $ROOT/etc/dsrlb/dsrlb.toml, then: systemctl enable --now dsrlb"
fi
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
echo "install.sh: installed under ${ROOT:-/}"
