#!/usr/bin/env bash
# Hands a NIC to DPDK (vfio-pci) for dsrlb, and back to its kernel driver.
#   scripts/bind-nic.sh --status
#       every PCI network device: driver, interfaces, whether each is up, carries an
#       address or the default route, and whether it may be bound; the IOMMU's state
#   scripts/bind-nic.sh bind PCI|IFACE [--force] [--persist] [--unsafe-noiommu] [--dry-run]
#       loads vfio-pci and binds the device (dpdk-devbind.py, Debian's dpdk package).
#       Refuses a device that is up with an address or a route (binding it would cut
#       the operator off) unless --force; refuses without IOMMU groups unless
#       --unsafe-noiommu (vfio's no-IOMMU mode: no DMA isolation). --persist keeps the
#       binding across reboots (driverctl). --dry-run checks and prints, changes nothing.
#   scripts/bind-nic.sh restore PCI [--dry-run]
#       gives the device back to its kernel driver (and drops a --persist override).
# Exit: 0 done, 1 refused (the reason is printed), 2 usage or no such device.
set -euo pipefail

STATE_DIR=${BIND_NIC_STATE:-/var/lib/dsrlb/bind-nic}
SYS=/sys/bus/pci/devices

die() { echo "bind-nic: $2" >&2; exit "$1"; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# The PCI network devices (class 0x02xxxx), one address a line.
net_devices() {
  local dev
  for dev in "$SYS"/*; do
    [[ $(cat "$dev/class" 2>/dev/null) == 0x02* ]] && basename "$dev"
  done
  return 0
}

driver_of() { basename "$(readlink -f "$SYS/$1/driver" 2>/dev/null)" 2>/dev/null || true; }

# The kernel interfaces of a PCI device (virtio's sit one level down).
ifaces_of() {
  local d
  for d in "$SYS/$1"/net/* "$SYS/$1"/virtio*/net/*; do
    [[ -e $d ]] && basename "$d"
  done
  return 0
}

addresses_of() { ip -o addr show dev "$1" 2>/dev/null | awk '$3 != "inet6" || $4 !~ /^fe80/ {print $4}' | paste -sd, -; }
is_up() { [[ $(cat "/sys/class/net/$1/operstate" 2>/dev/null) == up ]]; }
routes_via() { { ip -4 route show dev "$1"; ip -6 route show dev "$1" 2>/dev/null | grep -v '^fe80\|^multicast'; } 2>/dev/null | grep -c . || true; }
carries_default() { ip route show default 2>/dev/null | grep -q " dev $1\b" || ip -6 route show default 2>/dev/null | grep -q " dev $1\b"; }

iommu_groups() { find /sys/kernel/iommu_groups -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# Why binding PCI would cut the operator off, or nothing.
in_use() {
  local i why=()
  for i in $(ifaces_of "$1"); do
    local addrs; addrs=$(addresses_of "$i")
    if carries_default "$i"; then why+=("$i carries the default route"); fi
    if is_up "$i" && [[ -n $addrs ]]; then why+=("$i is up with $addrs"); fi
    if [[ $(routes_via "$i") -gt 0 ]] && ! carries_default "$i"; then why+=("$i has routes"); fi
  done
  local joined; joined=$(printf '%s; ' "${why[@]}"); echo "${joined%; }"
}

status() {
  printf '%-14s %-10s %-12s %-8s %-5s %-28s %-14s %s\n' PCI VENDOR:DEV DRIVER IFACE STATE ADDRESSES DEFAULT_ROUTE BINDABLE
  local pci
  for pci in $(net_devices); do
    local ids driver ifaces iface why
    ids="$(sed 's/^0x//' "$SYS/$pci/vendor"):$(sed 's/^0x//' "$SYS/$pci/device")"
    driver=$(driver_of "$pci"); driver=${driver:--}
    ifaces=$(ifaces_of "$pci")
    why=$(in_use "$pci")
    local bindable="yes"
    [[ -n $why ]] && bindable="no: $why"
    [[ $driver == vfio-pci || $driver == uio_pci_generic || $driver == igb_uio ]] && bindable="bound to DPDK"
    if [[ -z $ifaces ]]; then
      printf '%-14s %-10s %-12s %-8s %-5s %-28s %-14s %s\n' "$pci" "$ids" "$driver" - - - - "$bindable"
    fi
    for iface in $ifaces; do
      local state=down addrs default=no
      is_up "$iface" && state=up
      addrs=$(addresses_of "$iface"); addrs=${addrs:--}
      carries_default "$iface" && default=yes
      printf '%-14s %-10s %-12s %-8s %-5s %-28s %-14s %s\n' "$pci" "$ids" "$driver" "$iface" "$state" "$addrs" "$default" "$bindable"
    done
  done
  local groups; groups=$(iommu_groups)
  if [[ $groups -gt 0 ]]; then
    echo "IOMMU: $groups groups: vfio-pci can bind with DMA isolation"
  else
    echo "IOMMU: no groups: enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on iommu=pt (or amd_iommu=on); or bind with --unsafe-noiommu"
  fi
}

# PCI|IFACE -> a PCI address of a network device.
resolve() {
  local arg=$1 path
  if [[ -e /sys/class/net/$arg ]]; then
    path=$(readlink -f "/sys/class/net/$arg/device" 2>/dev/null) || die 2 "$arg is not a PCI device (no device behind it)"
    while [[ $path == /sys/devices/* ]]; do
      local name; name=$(basename "$path")
      if [[ $name =~ ^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]]; then echo "$name"; return; fi
      path=$(dirname "$path")
    done
    die 2 "$arg is not a PCI device"
  fi
  [[ $arg =~ ^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]] && arg="0000:$arg"
  [[ -e $SYS/$arg ]] || die 2 "no interface or PCI device '$arg' (see --status)"
  [[ $(cat "$SYS/$arg/class") == 0x02* ]] || die 2 "$arg is not a network device (class $(cat "$SYS/$arg/class"))"
  echo "$arg"
}

# Runs a command, or with --dry-run says it would.
act() {
  if [[ $DRY_RUN == 1 ]]; then echo "would run: $*"; else "$@"; fi
}

need_root() { [[ $DRY_RUN == 1 || $(id -u) == 0 ]] || die 1 "run as root: binding changes the machine's drivers"; }

devbind() {
  command -v dpdk-devbind.py >/dev/null || die 1 "dpdk-devbind.py not found: apt-get install dpdk"
  act dpdk-devbind.py "$@"
}

bind() {
  local pci=$1 driver why
  driver=$(driver_of "$pci")
  [[ $driver == vfio-pci ]] && { echo "bind-nic: $pci is already bound to vfio-pci"; return 0; }
  why=$(in_use "$pci")
  if [[ -n $why && $FORCE != 1 ]]; then
    die 1 "refusing to bind $pci: $why. Binding it would cut this machine off that network; move its addresses and routes to another device first, or pass --force"
  fi
  if [[ $(iommu_groups) -eq 0 ]]; then
    [[ $NOIOMMU == 1 ]] || die 1 "no IOMMU groups: vfio-pci cannot isolate the device's DMA. Enable VT-d (Intel) or AMD-Vi in the firmware and boot with 'intel_iommu=on iommu=pt' (or 'amd_iommu=on'), then reboot; on a machine without an IOMMU (some VMs), --unsafe-noiommu uses vfio's no-IOMMU mode"
    echo "bind-nic: WARNING: no-IOMMU mode: the device can read and write any memory of this machine, and so can whoever drives it; use it only where that is acceptable (a VM without a vIOMMU)" >&2
  fi
  [[ $PERSIST == 1 ]] && ! command -v driverctl >/dev/null && die 1 "--persist needs driverctl: apt-get install driverctl"
  need_root
  act modprobe vfio-pci
  if [[ $(iommu_groups) -eq 0 ]]; then
    act sh -c 'echo 1 > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode'
  fi
  act mkdir -p "$STATE_DIR"
  [[ $DRY_RUN == 1 ]] || echo "${driver:-none}" > "$STATE_DIR/$pci"
  if [[ $PERSIST == 1 ]]; then
    act driverctl set-override "$pci" vfio-pci
  else
    devbind -b vfio-pci "$pci"
  fi
  local done="bound to"; [[ $DRY_RUN == 1 ]] && done="would be bound to"
  echo "bind-nic: $pci $done vfio-pci (was ${driver:-unbound}); dsrlb's config: device = \"$pci\""
}

restore() {
  local pci=$1 driver current
  current=$(driver_of "$pci")
  case $current in
    vfio-pci|uio_pci_generic|igb_uio|"") ;;
    *) echo "bind-nic: $pci is on its kernel driver $current already"; return 0 ;;
  esac
  need_root
  driver=$(cat "$STATE_DIR/$pci" 2>/dev/null || true)
  if [[ -z $driver || $driver == none ]]; then
    driver=$(modprobe -R "$(cat "$SYS/$pci/modalias")" 2>/dev/null | head -1 || true)
    driver=${driver//_/-}
  fi
  [[ -n $driver ]] || die 1 "cannot tell $pci's kernel driver: bind it by hand with dpdk-devbind.py -b DRIVER $pci"
  if command -v driverctl >/dev/null && driverctl list-overrides 2>/dev/null | grep -q "^$pci "; then
    act driverctl unset-override "$pci"
  fi
  devbind -b "$driver" "$pci"
  [[ $DRY_RUN == 1 ]] || rm -f "$STATE_DIR/$pci"
  echo "bind-nic: $pci back on $driver"
}

FORCE=0 PERSIST=0 NOIOMMU=0 DRY_RUN=0
args=()
for a in "$@"; do
  case $a in
    --force) FORCE=1 ;;
    --persist) PERSIST=1 ;;
    --unsafe-noiommu) NOIOMMU=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --status) args+=(status) ;;
    -h|--help) usage ;;
    -*) die 2 "unknown option $a" ;;
    *) args+=("$a") ;;
  esac
done
case "${args[0]:-}" in
  status) status ;;
  bind|restore)
    [[ ${#args[@]} == 2 ]] || usage
    pci=$(resolve "${args[1]}") || exit $?
    "${args[0]}" "$pci" ;;
  *) usage ;;
esac
