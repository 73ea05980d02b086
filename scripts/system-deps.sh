#!/usr/bin/env bash
# Installs the Debian packages Trellis needs: at run time iptables, iproute2 and util-linux's
# nsenter/unshare/setpriv; for the tests also etcd-server (the etcd store backend's tests) and
# tcpdump (the security e2e captures pod traffic to show no plaintext passes between sidecars);
# with --bench also nginx and haproxy (the proxy benchmark compares against them). Runs
# before `npm start`, `npm test` and the benchmarks; does nothing when all are present, and
# says why it cannot when it is not root.
set -euo pipefail
need=()
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v iptables-restore >/dev/null 2>&1 || need+=(iptables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
for arg in "$@"; do
  case "$arg" in
    --test) [ -x /usr/bin/etcd ] || need+=(etcd-server); command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump) ;;
    --bench) command -v nginx >/dev/null 2>&1 || need+=(nginx-light); command -v haproxy >/dev/null 2>&1 || need+=(haproxy) ;;
  esac
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "trellis: missing system packages (${need[*]}); install them as root with apt-get (tests that need them will skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
# Debian starts services it installs; Trellis runs its own instances on ephemeral ports.
for svc in etcd nginx haproxy; do
  if printf '%s\n' "${need[@]}" | grep -q "^$svc"; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
done
