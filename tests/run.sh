#!/usr/bin/env bash
# README's test command: installs what the tests drive when it is missing, then runs the
# whole suite. .ci/run calls exactly this, so a clean machine (CI's) passes or fails the
# same way a developer's does.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the end-to-end tests drive: a real registry (CNCF distribution 2.8),
# nginx in front of layerpipe, headless Chromium with its WebDriver, systemd for
# systemd-analyze, which checks deploy/layerpipe.service, PyYAML, which parses
# deploy/kubernetes.yaml (both in tests/deploy.rs), and curl, the load benchmark's second
# client (tests/load_bench_smoke.rs), and PostgreSQL, whose initdb the catalog's tests use to
# start a throwaway cluster each (tests/real/postgres.rs).
packages=(docker-registry nginx-light chromium chromium-driver systemd python3-yaml curl postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing the Debian packages the tests drive: ${missing[*]}" >&2
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "run as root, or install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
fi

# The API docs are part of the build: a broken intra-doc link fails here, as a test would.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

cargo test --release "$@"
