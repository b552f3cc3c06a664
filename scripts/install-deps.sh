#!/usr/bin/env bash
# Installs every Debian package rpibootd needs to build, test and run its
# checks. Idempotent; run as root on Debian 12. Used by the README and CI.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang clang-format clang-tidy libclang-rt-14-dev
  libusb-1.0-0-dev libudev-dev libsystemd-dev nlohmann-json3-dev libssl-dev
  liblzma-dev libzstd-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  dbus dbus-daemon systemd udev openssl
  mtools dosfstools valgrind
  libengine-pkcs11-openssl softhsm2 opensc
  qemu-system-x86 busybox-static cpio kmod xz-utils
  dpkg-dev debhelper lintian debootstrap curl
  # promtool checks the metrics file in test_rpibootctl (the test's own strict
  # parser runs either way).
  prometheus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
