#!/usr/bin/env bash
# The integration tests start a throwaway PostgreSQL server; make sure its binaries exist.
# Installs Debian's postgresql package when they are missing (needs root, as on CI machines).
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "installing PostgreSQL from Debian's packages for the state-store tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
else
  echo "PostgreSQL is not installed; the PostgreSQL tests will be reported as errors." >&2
  echo "Install it with: sudo apt-get install postgresql" >&2
fi
