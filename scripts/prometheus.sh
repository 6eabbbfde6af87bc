#!/usr/bin/env bash
# Build and cache the Prometheus server the cluster tier runs inside its node (test/cluster/
# node-prometheus.ts): Debian's prometheus (scripts/test-tools.sh, enough for promtool and for the
# loopback tier test/prometheus) is built without Kubernetes service discovery, which is how a user
# without the Prometheus Operator finds the store's pods. This one is github.com/prometheus/prometheus's
# own cmd/prometheus, every discovery mechanism compiled in (its go.mod has no replace directives, so
# `go install module@version` builds it as released). Built without the web UI's assets: the HTTP API,
# which the tests use, is all there.
#
# Like scripts/k8s-tools.sh and scripts/otelcol.sh: built from the Go module proxy (no release downloads
# here) and cached OUTSIDE the repository, in a directory of its own so that it never shadows Debian's:
#   ${BAZAR_TOOLS_DIR:-$HOME/.cache/bazar-tools}/prometheus/<version>/prometheus
#
# Usage:
#   scripts/prometheus.sh              build it if missing (idempotent)
#   scripts/prometheus.sh --check      exit 0 iff it is there
#   scripts/prometheus.sh --print-bin  print the binary's path
set -euo pipefail

# v0.316.0 is Prometheus 3.16's module version (Prometheus tags v3 releases as v0.3xx.y modules).
PROMETHEUS_VERSION="v0.316.0"

TOOLS_DIR="${BAZAR_TOOLS_DIR:-${HOME}/.cache/bazar-tools}"
DEST="${TOOLS_DIR}/prometheus/${PROMETHEUS_VERSION}"
BIN="${DEST}/prometheus"

log() { printf '[prometheus %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

case "${1:-}" in
  --print-bin) echo "${BIN}"; exit 0 ;;
  --check)
    if [[ -x "${BIN}" ]]; then echo "ok      prometheus ${PROMETHEUS_VERSION} (${BIN})"; exit 0; fi
    echo "missing prometheus ${PROMETHEUS_VERSION} (${BIN}): bash scripts/prometheus.sh builds it"
    exit 1
    ;;
  "") ;;
  *) echo "usage: scripts/prometheus.sh [--check|--print-bin]" >&2; exit 2 ;;
esac

if [[ -x "${BIN}" ]]; then
  log "prometheus ${PROMETHEUS_VERSION} is built (${BIN})"
  exit 0
fi
command -v go >/dev/null || { echo "go is needed to build prometheus" >&2; exit 1; }
t0=$(date +%s)
log "building github.com/prometheus/prometheus/cmd/prometheus@${PROMETHEUS_VERSION} from the Go module proxy"
mkdir -p "${TOOLS_DIR}"
tmp="$(mktemp -d "${TOOLS_DIR}/.prometheus-build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
# Outside any module, so that no go.mod of ours is consulted.
(cd / && CGO_ENABLED=0 GOBIN="${tmp}" GOFLAGS="${GOFLAGS:+${GOFLAGS} }-trimpath" \
  go install "github.com/prometheus/prometheus/cmd/prometheus@${PROMETHEUS_VERSION}")
mkdir -p "${DEST}"
mv -f "${tmp}/prometheus" "${BIN}"
log "built ${BIN} in $(( $(date +%s) - t0 )) s ($(du -h "${BIN}" | cut -f1))"
