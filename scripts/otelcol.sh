#!/usr/bin/env bash
# Build and cache the OpenTelemetry Collector the tests export spans to (tools/otelcol): a distribution
# with receiver otlp (HTTP and gRPC), processor batch and exporters file and debug, from the wrapper
# module in scripts/otelcol/ (main.go + components.go in the shape the Collector Builder, ocb, generates).
#
# Like scripts/k8s-tools.sh: nothing ships a binary we can download on these machines (no GitHub
# releases, no Docker), so it is built from the Go module proxy. The binary is cached OUTSIDE the
# repository as
#   ${BAZAR_TOOLS_DIR:-$HOME/.cache/bazar-tools}/bin/otelcol
# with a stamp in bin/.stamps/otelcol (the pinned versions and a hash of the wrapper module); a binary
# whose stamp matches is not rebuilt.
#
# Usage:
#   scripts/otelcol.sh                 build the collector if it is missing or stale (idempotent)
#   scripts/otelcol.sh --print-bin-dir print the bin directory
#   scripts/otelcol.sh --check         exit 0 iff the collector is present at its pinned versions
#   scripts/otelcol.sh --status        say so (ok/missing, with the stamp)
#   scripts/otelcol.sh --regen         rewrite scripts/otelcol/go.mod and go.sum from the pins below,
#                                      then build
#   scripts/otelcol.sh --force         rebuild
#
# The first build downloads ~130 MB of modules (188 of them are compiled in) and took 2 min on 2 busy
# cores under nice (measured, with part of Go's build cache already warm from scripts/k8s-tools.sh);
# the binary is ~37 MB; later runs are instant. Needs Go >= 1.26 (the collector's modules say
# go 1.26.0) or GOTOOLCHAIN=auto.
set -euo pipefail

# ---------------------------------------------------------------- pins
# Core's unstable modules (otelcol, otlpreceiver, batchprocessor, debugexporter, service) carry
# v0.<minor>.x, its stable ones (component, confmap and its providers, pdata, ...) v1.x: each core
# release tags both. v0.165.0/v1.71.0 is the newest the Go module proxy serves here.
OTELCOL_CORE_VERSION="v0.165.0"
OTELCOL_CORE_STABLE_VERSION="v1.71.0"
# opentelemetry-collector-contrib's fileexporter: v0.165.1 is the newest patch of the matching
# release, and its go.mod requires exactly core v0.165.0 / v1.71.0.
OTELCOL_CONTRIB_VERSION="v0.165.1"

# ---------------------------------------------------------------- paths
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WRAP_DIR="${SCRIPT_DIR}/otelcol"
TOOLS_DIR="${BAZAR_TOOLS_DIR:-${HOME}/.cache/bazar-tools}"
BIN_DIR="${TOOLS_DIR}/bin"
STAMP_DIR="${BIN_DIR}/.stamps"
TOOL="otelcol"

# The modules the wrapper imports directly, each at its pin ("module version").
CORE="go.opentelemetry.io/collector"
CONTRIB="github.com/open-telemetry/opentelemetry-collector-contrib"
REQUIRES=(
  "${CORE}/otelcol ${OTELCOL_CORE_VERSION}"
  "${CORE}/service ${OTELCOL_CORE_VERSION}"
  "${CORE}/receiver/otlpreceiver ${OTELCOL_CORE_VERSION}"
  "${CORE}/processor/batchprocessor ${OTELCOL_CORE_VERSION}"
  "${CORE}/exporter/debugexporter ${OTELCOL_CORE_VERSION}"
  "${CONTRIB}/exporter/fileexporter ${OTELCOL_CONTRIB_VERSION}"
  "${CORE}/component ${OTELCOL_CORE_STABLE_VERSION}"
  "${CORE}/confmap ${OTELCOL_CORE_STABLE_VERSION}"
  "${CORE}/confmap/provider/envprovider ${OTELCOL_CORE_STABLE_VERSION}"
  "${CORE}/confmap/provider/fileprovider ${OTELCOL_CORE_STABLE_VERSION}"
  "${CORE}/confmap/provider/yamlprovider ${OTELCOL_CORE_STABLE_VERSION}"
  "${CORE}/connector ${OTELCOL_CORE_VERSION}"
  "${CORE}/exporter ${OTELCOL_CORE_STABLE_VERSION}"
  "${CORE}/extension ${OTELCOL_CORE_STABLE_VERSION}"
  "${CORE}/processor ${OTELCOL_CORE_STABLE_VERSION}"
  "${CORE}/receiver ${OTELCOL_CORE_STABLE_VERSION}"
)

log() { printf '[otelcol %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Stamp contents: the pins and a hash of the wrapper module (go.mod, go.sum, *.go), so that bumping a
# pin, --regen or a component added to components.go rebuilds the binary.
wrapper_hash() {
  (cd "${WRAP_DIR}" && cat go.mod go.sum ./*.go 2>/dev/null) | sha256sum | cut -c1-12
}
stamp() {
  echo "${TOOL} core ${OTELCOL_CORE_VERSION}/${OTELCOL_CORE_STABLE_VERSION} contrib ${OTELCOL_CONTRIB_VERSION} wrapper $(wrapper_hash)"
}

is_current() {
  [[ -x "${BIN_DIR}/${TOOL}" && -f "${STAMP_DIR}/${TOOL}" ]] || return 1
  [[ "$(cat "${STAMP_DIR}/${TOOL}")" == "$(stamp)" ]]
}

write_stamp() {
  mkdir -p "${STAMP_DIR}"
  stamp > "${STAMP_DIR}/${TOOL}.tmp"
  mv -f "${STAMP_DIR}/${TOOL}.tmp" "${STAMP_DIR}/${TOOL}"
}

status() {
  if is_current; then
    echo "ok      ${TOOL}  ($(stamp))"
  else
    echo "missing ${TOOL}  (want $(stamp))"
    return 1
  fi
}

# ---------------------------------------------------------------- wrapper module
# go.mod requires every directly imported module at its pin; go mod tidy adds the rest (what those
# modules require, by minimal version selection) and writes go.sum.
regen() {
  local r
  log "regen ${WRAP_DIR}/go.mod for core ${OTELCOL_CORE_VERSION}/${OTELCOL_CORE_STABLE_VERSION}, contrib ${OTELCOL_CONTRIB_VERSION}"
  {
    echo "// Generated by scripts/otelcol.sh --regen; do not edit by hand."
    echo "// The Bazar test collector: core ${OTELCOL_CORE_VERSION}/${OTELCOL_CORE_STABLE_VERSION}, contrib ${OTELCOL_CONTRIB_VERSION}."
    echo "module bazar.local/otelcol"
    echo
    echo "go 1.26.0"
    echo
    echo "require ("
    for r in "${REQUIRES[@]}"; do echo "	${r}"; done
    echo ")"
  } > "${WRAP_DIR}/go.mod"
  rm -f "${WRAP_DIR}/go.sum"
  # -e: the proxy refuses the zip of contrib's otlpencodingextension (403 "This module version is not
  # available", v0.165.0 and v0.165.1), which only fileexporter's tests import; tidy would stop there.
  # The build itself never needs it.
  (cd "${WRAP_DIR}" && go mod tidy -e)
  log "(a 403 for otlpencodingextension above is expected: only fileexporter's tests import it)"
  # Tidy resolves by minimal version selection: a module that something else requires at a higher
  # version than its pin would be silently upgraded. Say so instead.
  wrapper_current || { echo "go mod tidy moved a pinned module off its pin: see ${WRAP_DIR}/go.mod" >&2; exit 1; }
}

wrapper_current() {
  local r re
  [[ -f "${WRAP_DIR}/go.mod" && -f "${WRAP_DIR}/go.sum" ]] || return 1
  for r in "${REQUIRES[@]}"; do
    re="${r//./\\.}"
    grep -Eq "^(require[[:space:]]+|[[:space:]]+)${re}([[:space:]]|\$)" "${WRAP_DIR}/go.mod" || return 1
  done
}

# ---------------------------------------------------------------- build
build() {
  command -v go >/dev/null || { echo "go is required (>= 1.26)" >&2; exit 1; }
  export CGO_ENABLED=0
  wrapper_current || regen
  is_current && { log "${TOOL} is current: $(stamp)"; return 0; }
  local t0=${SECONDS}
  log "building ${TOOL} ($(stamp)) ..."
  mkdir -p "${BIN_DIR}"
  (cd "${WRAP_DIR}" && go build -trimpath -ldflags="-s -w -X main.version=${OTELCOL_CORE_VERSION#v}" \
    -o "${BIN_DIR}/.${TOOL}.tmp" .)
  mv -f "${BIN_DIR}/.${TOOL}.tmp" "${BIN_DIR}/${TOOL}"
  write_stamp
  log "built ${TOOL} in $((SECONDS - t0))s ($(du -h "${BIN_DIR}/${TOOL}" | cut -f1)): ${BIN_DIR}/${TOOL}"
}

case "${1:-}" in
  "") build ;;
  --print-bin-dir) echo "${BIN_DIR}" ;;
  --check) is_current ;;
  --status) status ;;
  --regen) command -v go >/dev/null || { echo "go is required (>= 1.26)" >&2; exit 1; }; regen; build ;;
  --force) rm -f "${STAMP_DIR}/${TOOL}"; build ;;
  -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac
