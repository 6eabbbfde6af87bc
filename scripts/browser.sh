#!/usr/bin/env bash
# The browser tier's browser: Debian's headless Chromium from apt (playwright-core, pinned in
# package.json, drives it; nothing downloads a browser). Idempotent; --check only says whether it is here.
set -euo pipefail
if [[ -x /usr/bin/chromium-headless-shell || -x /usr/bin/chromium ]]; then
  echo "browser: $(command -v chromium-headless-shell || command -v chromium)"
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  echo "browser: no Chromium (bash scripts/browser.sh installs Debian's chromium-headless-shell)" >&2
  exit 1
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q chromium-headless-shell
echo "browser: $(command -v chromium-headless-shell)"
