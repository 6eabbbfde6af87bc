#!/usr/bin/env bash
# What the test tiers need beyond the cluster tier's (tools/cluster prepare installs those) and the
# Kubernetes toolchain (scripts/k8s-tools.sh):
#   Debian packages (apt-get):
#     chromium-headless-shell  the browser tier's browser (playwright-core, pinned in package.json, drives
#                              it through its executablePath; nothing downloads a browser)
#     prometheus               promtool, for the chart's alert rules (test/chart/alerts.test.ts)
#     wrk                      the bench's load generator (tools/bench/src/wrk.ts; its test runs it)
#   built from the Go module proxy by scripts/otelcol.sh (cached in ${BAZAR_TOOLS_DIR:-~/.cache/bazar-tools}/bin):
#     otelcol                  an OpenTelemetry Collector (OTLP receiver, file exporter) that tests export
#                              spans to (tools/otelcol/src/collector.ts starts it); the first build takes
#                              a few minutes, later runs are instant
#   built from the Go module proxy by scripts/prometheus.sh (cached in ${BAZAR_TOOLS_DIR:-~/.cache/bazar-tools}/prometheus):
#     prometheus               a Prometheus server with Kubernetes service discovery (Debian's has none),
#                              which the cluster tier runs inside its node (test/cluster/node-prometheus.ts)
#   built from the Go module proxy by scripts/skaffold.sh (cached in ${BAZAR_TOOLS_DIR:-~/.cache/bazar-tools}/skaffold):
#     skaffold                 skaffold run, dev and delete against the cluster tier (test/cluster/skaffold.test.ts)
# Idempotent; --check only says what is missing (exit 1 if anything is).
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
declare -A PROVIDES=([chromium-headless-shell]=/usr/bin/chromium-headless-shell [prometheus]=/usr/bin/promtool [wrk]=/usr/bin/wrk)
missing=()
for pkg in "${!PROVIDES[@]}"; do
  [[ -x "${PROVIDES[$pkg]}" ]] || missing+=("$pkg")
done
otelcol_here=true
bash "${SCRIPT_DIR}/otelcol.sh" --check > /dev/null || otelcol_here=false
prometheus_here=true
bash "${SCRIPT_DIR}/prometheus.sh" --check > /dev/null || prometheus_here=false
skaffold_here=true
bash "${SCRIPT_DIR}/skaffold.sh" --check > /dev/null || skaffold_here=false

if [[ "${1:-}" == "--check" ]]; then
  want=("${missing[@]}")
  $otelcol_here || want+=(otelcol)
  $prometheus_here || want+=("prometheus (built, with Kubernetes discovery)")
  $skaffold_here || want+=(skaffold)
  if [[ ${#want[@]} -eq 0 ]]; then
    echo "test tools: all here (${PROVIDES[*]} $(bash "${SCRIPT_DIR}/otelcol.sh" --print-bin-dir)/otelcol $(bash "${SCRIPT_DIR}/prometheus.sh" --print-bin) $(bash "${SCRIPT_DIR}/skaffold.sh" --print-bin))"
    exit 0
  fi
  echo "test tools: missing ${want[*]} (bash scripts/test-tools.sh installs them)" >&2
  exit 1
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "test tools: Debian packages all here (${PROVIDES[*]})"
else
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  # prometheus: only its binaries are wanted; its service is not started (policy-rc.d or no systemd).
  $sudo apt-get install -y -q "${missing[@]}"
  echo "test tools: installed ${missing[*]}"
fi

# The collector: built if missing or stale, else nothing to do.
bash "${SCRIPT_DIR}/otelcol.sh"
$otelcol_here || echo "test tools: built otelcol"
# The cluster tier's Prometheus (Debian's has no Kubernetes discovery): built if missing.
bash "${SCRIPT_DIR}/prometheus.sh"
$prometheus_here || echo "test tools: built prometheus with Kubernetes discovery"
# skaffold (the cluster tier's skaffold file): built if missing or stale.
bash "${SCRIPT_DIR}/skaffold.sh"
$skaffold_here || echo "test tools: built skaffold"
