#!/usr/bin/env bash
# Installs everything Ringvisor needs on a fresh Debian machine, then builds it.
# With --system, only the Debian packages (the benchmarks use this: they compare against QEMU).
#  - gcc-riscv64-linux-gnu: cross compiler for the test and benchmark programs
#  - libc6-dev-riscv64-cross: glibc for static Linux user programs the tests run in the guest
#  - qemu-system-misc, qemu-user: the reference RISC-V implementations tests compare against
#  - opensbi: the firmware QEMU boots the reference Linux guests with
#  - device-tree-compiler: decodes the device trees Ringvisor writes, in tests
#  - gpgv, debian-archive-keyring: verify the Debian archive the guest images come from
#  - gnupg: the tests sign a throwaway local archive with their own key
#  - cpio: cross-checks the initramfs archives Ringvisor writes, in tests
#  - qemu-utils: qemu-img, which checks the qcow2 images Ringvisor writes and makes ones it reads
#  - e2fsprogs: mke2fs -d builds ext4 disks from a directory; debugfs and e2fsck read them back
#  - debootstrap: resolves and unpacks the Debian root disk's packages (image pull debian)
#  - fakeroot: lets a user other than root build that disk (owners and device nodes)
#  - openssh-client: ssh-keygen makes the key the Debian root disk authorizes; ssh logs in
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc-riscv64-linux-gnu libc6-dev-riscv64-cross qemu-system-misc qemu-user opensbi device-tree-compiler gpgv debian-archive-keyring gnupg cpio qemu-utils e2fsprogs debootstrap fakeroot openssh-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ "${1:-}" = "--system" ] && exit 0

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
