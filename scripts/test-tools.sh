#!/usr/bin/env bash
# Debian packages the test tiers need beyond the cluster tier's (tools/cluster prepare installs those):
#   chromium-headless-shell  the browser tier's browser (playwright-core, pinned in package.json, drives
#                            it through its executablePath; nothing downloads a browser)
#   prometheus               promtool, for the chart's alert rules (test/chart/alerts.test.ts)
# Idempotent; --check only says what is missing (exit 1 if anything is).
set -euo pipefail
declare -A PROVIDES=([chromium-headless-shell]=/usr/bin/chromium-headless-shell [prometheus]=/usr/bin/promtool)
missing=()
for pkg in "${!PROVIDES[@]}"; do
  [[ -x "${PROVIDES[$pkg]}" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "test tools: all here (${PROVIDES[*]})"
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  echo "test tools: missing ${missing[*]} (bash scripts/test-tools.sh installs them)" >&2
  exit 1
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# prometheus: only its binaries are wanted; its service is not started (policy-rc.d or no systemd).
$sudo apt-get install -y -q "${missing[@]}"
echo "test tools: installed ${missing[*]}"
