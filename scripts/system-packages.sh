#!/bin/sh
# The system tools the test suite needs beyond Node, installed from Debian's packages when missing
# (npm test runs this first, as "pretest"). socat is the parent relay on a Nitro parent, and the
# tests run it for real; shellcheck checks every shell script; cc compiles the enclave's NSM helper;
# promtool (Debian's prometheus package) checks and unit-tests deploy/prometheus/ and lints /metrics.
# chromium is the real browser the client page's tests drive (puppeteer-core, no browser download).
# openssl makes the TLS tests' certificates and curl is one of their clients.
# jemalloc is the allocator bin/mpg gives the model server (see docs/performance.md).
# Without root or apt-get, this says what to install and fails.
set -eu

missing=''
command -v socat >/dev/null 2>&1 || missing="${missing} socat"
command -v shellcheck >/dev/null 2>&1 || missing="${missing} shellcheck"
command -v cc >/dev/null 2>&1 || missing="${missing} gcc libc6-dev"
command -v promtool >/dev/null 2>&1 || missing="${missing} prometheus"
command -v chromium >/dev/null 2>&1 || missing="${missing} chromium"
command -v openssl >/dev/null 2>&1 || missing="${missing} openssl"
command -v curl >/dev/null 2>&1 || missing="${missing} curl"
[ -n "$(ls /usr/lib/*/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 2>/dev/null)" ] || missing="${missing} libjemalloc2"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: installing${missing} (apt-get)" >&2
  # shellcheck disable=SC2086 # the package list is meant to split
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null
  fi
  exit 0
fi
echo "system-packages: the tests need${missing}; install it (Debian/Ubuntu: apt-get install${missing}; Amazon Linux: dnf install${missing}) and run again" >&2
exit 1
