#!/usr/bin/env bash
# Proves the README's commands on a fresh Debian 12: debootstraps a minimal
# bookworm root (minbase, plus git, make and ca-certificates, nothing else),
# clones this repository's committed HEAD into it and runs `make TARGET` there
# (default: test) as root, with Debian's own Node.js, Python and tools only.
#
#   sudo scripts/fresh-debian.sh [TARGET...]        e.g. test, or demo-check
#
# The minimal root is made once and kept (FRESH_BASE, default
# /var/tmp/lastframe-debian12-base); every run copies it to a new root
# (FRESH_ROOT, default /var/tmp/lastframe-debian12-run) so each run starts from
# the same untouched machine. FRESH_MIRROR names the Debian mirror (default:
# the host's, else deb.debian.org). Extra environment for the run inside:
# FRESH_ENV="JOBS=2 LASTFRAME_TEST_BUILDS=normal". The exit code is make's.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

[ "$(id -u)" -eq 0 ] || { echo "fresh-debian: run as root (debootstrap and chroot need it)" >&2; exit 2; }
base="${FRESH_BASE:-/var/tmp/lastframe-debian12-base}"
root="${FRESH_ROOT:-/var/tmp/lastframe-debian12-run}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(test)

mirror="${FRESH_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    awk '{print $2}' | head -n 1 || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi

if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
fi

if [ ! -f "${base}/.lastframe-base-ok" ]; then
  echo "fresh-debian: debootstrap bookworm (minbase) into ${base} from ${mirror}"
  rm -rf "${base}"
  debootstrap --variant=minbase --include=git,make,ca-certificates bookworm "${base}" "${mirror}"
  # The security archive too, as every installed Debian 12 has it.
  echo "deb ${mirror%/debian*}/debian-security bookworm-security main" >>"${base}/etc/apt/sources.list"
  echo "deb ${mirror} bookworm-updates main" >>"${base}/etc/apt/sources.list"
  touch "${base}/.lastframe-base-ok"
fi

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "fresh-debian: new root ${root}"
rm -rf "${root}"
cp -a "${base}" "${root}"
for m in proc sys dev dev/pts dev/shm; do
  mkdir -p "${root}/${m}"
  case "$m" in
    proc) mount -t proc proc "${root}/proc" ;;
    sys) mount -t sysfs sys "${root}/sys" ;;
    dev/shm) mount -t tmpfs -o mode=1777 shm "${root}/dev/shm" ;;
    *) mount --bind "/${m}" "${root}/${m}" ;;
  esac
  mounted+=("${root}/${m}")
done
cp /etc/resolv.conf "${root}/etc/resolv.conf" 2>/dev/null || true
# debootstrap writes no /etc/hosts (Debian's installer does): the one every installed system has.
[ -s "${root}/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"${root}/etc/hosts"
# The network of this machine, not the project: where TLS passes through a proxy with a CA of
# its own (added to this host's bundle), the new root trusts the host's bundle too, and Node
# reads it as the host's does (NODE_EXTRA_CA_CERTS).
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "${root}/usr/local/share/ca-certificates/host-network.crt"
  chroot "${root}" /usr/sbin/update-ca-certificates >/dev/null 2>&1 || true
fi
extra_env=()
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && extra_env+=("NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt")

# What a user would have: a clone of the committed repository (never the working tree).
git clone -q "${repo}" "${root}/root/lastframe"
echo "fresh-debian: $(git -C "${root}/root/lastframe" log -1 --format='%h %s')"
echo "fresh-debian: make ${targets[*]} inside (node: Debian's, python3: Debian's)"
set +e
# shellcheck disable=SC2086
chroot "${root}" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 CI=true "${extra_env[@]}" ${FRESH_ENV:-} /bin/bash -c "cd /root/lastframe && make ${targets[*]}"
rc=$?
set -e
echo "fresh-debian: make ${targets[*]} exited ${rc}"
exit "${rc}"
