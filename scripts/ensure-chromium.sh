#!/usr/bin/env bash
# The monitoring report's tests open the page in headless Chromium (through Playwright, which
# drives the system browser); make sure Debian's chromium exists. Needs root, as on CI machines.
set -euo pipefail
if command -v chromium >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "installing Chromium from Debian's packages for the report tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
else
  echo "Chromium is not installed; the report tests will fail." >&2
  echo "Install it with: sudo apt-get install chromium" >&2
fi
