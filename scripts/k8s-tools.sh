#!/usr/bin/env bash
# Build and cache the Kubernetes tooling used by Bazar's tests and its local cluster:
#   kube-apiserver, kubectl, kubelet, kube-controller-manager, kube-scheduler, kube-proxy
#   (k8s.io/kubernetes), etcd 3.6, helm v3, CoreDNS and local-path-provisioner.
#
# Nothing here ships a binary we can download on these machines (no GitHub
# releases, no Docker), so everything is built from the Go module proxy.
# Binaries are cached OUTSIDE the repository in
#   ${BAZAR_TOOLS_DIR:-$HOME/.cache/bazar-tools}/bin
# with one version stamp per tool in bin/.stamps/<tool>; a tool whose binary
# exists and whose stamp matches the pinned version is not rebuilt.
#
# Usage:
#   scripts/k8s-tools.sh                 build whatever is missing (idempotent)
#   scripts/k8s-tools.sh --print-bin-dir print the bin directory
#   scripts/k8s-tools.sh --check         exit 0 iff every tool is present at its pinned version
#   scripts/k8s-tools.sh --regen         rewrite the wrapper modules in scripts/k8s-tools/
#                                        (go.mod/go.sum) from the pins below, then build
#   scripts/k8s-tools.sh --force         rebuild everything
#
# The first build downloads ~1 GB of modules and takes ~8.5 min on 2 cores (measured);
# later runs are instant.  Needs Go >= 1.26 (etcd 3.6.16 says go 1.26.0) or GOTOOLCHAIN=auto.
set -euo pipefail

# ---------------------------------------------------------------- pins
# k8s.io/kubernetes: the newest release the Go module proxy serves here (v1.37.2; it needs
# go 1.26, which this machine has). Its kubelet still runs on cgroup v1 with failCgroupV1: false.
# v1.34.12 is the proven fallback.
KUBE_VERSION="${BAZAR_KUBE_VERSION:-v1.37.2}"
# The published staging modules (k8s.io/api, client-go, ...) carry v0.<minor>.<patch>.
KUBE_STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
ETCD_VERSION="v3.6.16"
HELM_VERSION="v3.22.0"
# helm's own Makefile stamps the Kubernetes version it was built against (client-go
# v0.37.x in helm v3.22.0) into chartutil/lint; without it `helm template` assumes 1.20.
HELM_K8S_MAJOR="1"
HELM_K8S_MINOR="37"
COREDNS_VERSION="v1.15.0"
LOCAL_PATH_VERSION="v0.0.30"
# NetworkPolicy enforcement for the cluster tier only: the one enforcer that runs on this kernel (no nft
# queue support for sigs.k8s.io/kube-network-policies). v2.1.0 is the only version the proxy serves and
# has reported security flaws: it runs as a test enforcer inside the tier's own network namespace, never
# as something a user deploys.
KUBE_ROUTER_VERSION="v2.1.0"

# ---------------------------------------------------------------- paths
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WRAP_DIR="${SCRIPT_DIR}/k8s-tools"
TOOLS_DIR="${BAZAR_TOOLS_DIR:-${HOME}/.cache/bazar-tools}"
BIN_DIR="${TOOLS_DIR}/bin"
STAMP_DIR="${BIN_DIR}/.stamps"

# Stamp contents: "<tool> <version>" — bump a pin and the tool is rebuilt.
stamp_for() {
  case "$1" in
    kube-apiserver|kubectl|kubelet|kube-controller-manager|kube-scheduler|kube-proxy) echo "$1 ${KUBE_VERSION}" ;;
    coredns) echo "coredns ${COREDNS_VERSION}" ;;
    local-path-provisioner) echo "local-path-provisioner ${LOCAL_PATH_VERSION}" ;;
    kube-router) echo "kube-router ${KUBE_ROUTER_VERSION}" ;;
    etcd) echo "etcd ${ETCD_VERSION}" ;;
    helm) echo "helm ${HELM_VERSION} k8s${HELM_K8S_MAJOR}.${HELM_K8S_MINOR}" ;;
    *) echo "unknown tool $1" >&2; return 1 ;;
  esac
}
KUBE_TOOLS=(kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy)
TOOLS=(etcd "${KUBE_TOOLS[@]}" helm coredns local-path-provisioner kube-router)

log() { printf '[k8s-tools %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

is_current() {
  local tool="$1"
  [[ -x "${BIN_DIR}/${tool}" && -f "${STAMP_DIR}/${tool}" ]] || return 1
  [[ "$(cat "${STAMP_DIR}/${tool}")" == "$(stamp_for "${tool}")" ]]
}

write_stamp() {
  mkdir -p "${STAMP_DIR}"
  stamp_for "$1" > "${STAMP_DIR}/$1.tmp"
  mv -f "${STAMP_DIR}/$1.tmp" "${STAMP_DIR}/$1"
}

check_all() {
  local ok=0 tool
  for tool in "${TOOLS[@]}"; do
    if is_current "${tool}"; then
      echo "ok      ${tool}  ($(stamp_for "${tool}"))"
    else
      echo "missing ${tool}  (want $(stamp_for "${tool}"))"
      ok=1
    fi
  done
  return "${ok}"
}

# Common Go environment: reproducible, small, static binaries.  GOTOOLCHAIN is left
# alone: with Go < 1.26 and GOTOOLCHAIN=auto, go fetches go1.26 from the module proxy.
go_env() {
  export CGO_ENABLED=0
  [[ " ${GOFLAGS:-} " == *" -trimpath "* ]] || export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-trimpath"
}

# ---------------------------------------------------------------- wrapper modules
# kubernetes: k8s.io/kubernetes requires its ~29 staging modules at v0.0.0 and
# replaces them with ./staging/... paths.  Replaces in a dependency are ignored, so
# our wrapper must replace each of them with the published v0.34.x itself.
regen_kubernetes() {
  local dir="${WRAP_DIR}/kubernetes" modfile staging m
  mkdir -p "${dir}"
  log "regen ${dir} for k8s.io/kubernetes ${KUBE_VERSION} (staging ${KUBE_STAGING_VERSION})"
  # Run outside any module so a stale wrapper go.mod cannot interfere.
  modfile="$(cd / && go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "${modfile}" ]] || { echo "could not download k8s.io/kubernetes@${KUBE_VERSION}" >&2; exit 1; }
  # Every k8s.io module k8s.io/kubernetes requires at v0.0.0 is a staging module.
  staging="$(awk '/^require[[:space:]]*\(/{r=1;next} r&&/^\)/{r=0} r&&$1 ~ /^k8s\.io\// && $2=="v0.0.0"{print $1}' "${modfile}" | sort -u)"
  [[ -n "${staging}" ]] || { echo "no staging modules found in ${modfile}" >&2; exit 1; }
  {
    echo "// Generated by scripts/k8s-tools.sh --regen; do not edit by hand."
    echo "// Builds ${KUBE_TOOLS[*]} from k8s.io/kubernetes ${KUBE_VERSION}."
    echo "module bazar.local/k8s-tools/kubernetes"
    echo
    echo "go $(sed -n 's/^go //p' "${modfile}")"
    echo
    echo "tool ("
    for m in "${KUBE_TOOLS[@]}"; do echo "	k8s.io/kubernetes/cmd/${m}"; done
    echo ")"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    echo "replace ("
    for m in ${staging}; do echo "	${m} => ${m} ${KUBE_STAGING_VERSION}"; done
    echo ")"
  } > "${dir}/go.mod"
  rm -f "${dir}/go.sum"
  (cd "${dir}" && go mod tidy)
}

regen_etcd() {
  local dir="${WRAP_DIR}/etcd"
  mkdir -p "${dir}"
  log "regen ${dir} for go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
  {
    echo "// Generated by scripts/k8s-tools.sh --regen; do not edit by hand."
    echo "// Builds etcd from go.etcd.io/etcd/server/v3 ${ETCD_VERSION} (its main.go is at the module root)."
    echo "module bazar.local/k8s-tools/etcd"
    echo
    echo "go 1.26.0"
    echo
    echo "tool go.etcd.io/etcd/server/v3"
    echo
    echo "require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
  } > "${dir}/go.mod"
  rm -f "${dir}/go.sum"
  (cd "${dir}" && go mod tidy)
}

wrapper_current() { # $1 dir, $2 "module version" that go.mod must require
  # go mod tidy moves the requirement into a block and may mark it "// indirect".
  local re="${2//./\\.}"
  [[ -f "$1/go.mod" && -f "$1/go.sum" ]] \
    && grep -Eq "^(require[[:space:]]+|[[:space:]]+)${re}([[:space:]]|\$)" "$1/go.mod"
}

# ---------------------------------------------------------------- builds
build_go_pkg() { # $1 tool name, $2 wrapper dir, $3 package, $4 extra ldflags
  local tool="$1" dir="$2" pkg="$3" extra="$4" t0
  t0=${SECONDS}
  log "building ${tool} ($(stamp_for "${tool}")) from ${pkg} ..."
  mkdir -p "${BIN_DIR}"
  (cd "${dir}" && go build -ldflags="-s -w ${extra}" -o "${BIN_DIR}/.${tool}.tmp" "${pkg}")
  mv -f "${BIN_DIR}/.${tool}.tmp" "${BIN_DIR}/${tool}"
  write_stamp "${tool}"
  log "built ${tool} in $((SECONDS - t0))s ($(du -h "${BIN_DIR}/${tool}" | cut -f1))"
}

kube_ldflags() {
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local p out=""
  # What hack/lib/version.sh stamps, so `kubectl version` / /version report v1.34.x
  # instead of v0.0.0-master.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    out+=" -X ${p}.gitVersion=${KUBE_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${minor} -X ${p}.gitTreeState=clean"
  done
  echo "${out}"
}

build_kubernetes() {
  local dir="${WRAP_DIR}/kubernetes"
  wrapper_current "${dir}" "k8s.io/kubernetes ${KUBE_VERSION}" || regen_kubernetes
  local tool
  for tool in "${KUBE_TOOLS[@]}"; do
    is_current "${tool}" || build_go_pkg "${tool}" "${dir}" "k8s.io/kubernetes/cmd/${tool}" "$(kube_ldflags)"
  done
}

build_etcd() {
  local dir="${WRAP_DIR}/etcd"
  wrapper_current "${dir}" "go.etcd.io/etcd/server/v3 ${ETCD_VERSION}" || regen_etcd
  is_current etcd || build_go_pkg etcd "${dir}" go.etcd.io/etcd/server/v3 ""
}

build_helm() {
  is_current helm && return 0
  local t0=${SECONDS} x="helm.sh/helm/v3"
  log "building helm ($(stamp_for helm)) with go install ..."
  mkdir -p "${BIN_DIR}"
  # go install outside any module: GOFLAGS=-mod=... would be rejected, so run from /.
  (cd / && GOBIN="${BIN_DIR}" go install \
    -ldflags="-s -w -X ${x}/internal/version.version=${HELM_VERSION} -X ${x}/internal/version.metadata= -X ${x}/internal/version.gitTreeState=clean \
      -X ${x}/pkg/lint/rules.k8sVersionMajor=${HELM_K8S_MAJOR} -X ${x}/pkg/lint/rules.k8sVersionMinor=${HELM_K8S_MINOR} \
      -X ${x}/pkg/chartutil.k8sVersionMajor=${HELM_K8S_MAJOR} -X ${x}/pkg/chartutil.k8sVersionMinor=${HELM_K8S_MINOR}" \
    "${x}/cmd/helm@${HELM_VERSION}")
  write_stamp helm
  log "built helm in $((SECONDS - t0))s ($(du -h "${BIN_DIR}/helm" | cut -f1))"
}

go_install_tool() { # $1 tool name, $2 module@version path of its main package, $3 extra ldflags
  is_current "$1" && return 0
  local t0=${SECONDS}
  log "building $1 ($(stamp_for "$1")) with go install ..."
  mkdir -p "${BIN_DIR}/.gobin-$1"
  (cd / && GOBIN="${BIN_DIR}/.gobin-$1" go install -ldflags="-s -w $3" "$2")
  mv -f "${BIN_DIR}/.gobin-$1/"* "${BIN_DIR}/$1"
  rmdir "${BIN_DIR}/.gobin-$1"
  write_stamp "$1"
  log "built $1 in $((SECONDS - t0))s ($(du -h "${BIN_DIR}/$1" | cut -f1))"
}

build_all() {
  command -v go >/dev/null || { echo "go is required (>= 1.26)" >&2; exit 1; }
  go_env
  local t0=${SECONDS}
  # Sequential on purpose: linking kube-apiserver alone wants ~2 GB and both cores.
  build_etcd
  build_kubernetes
  build_helm
  # The local cluster's DNS and default StorageClass (what kind and minikube ship).
  go_install_tool coredns "github.com/coredns/coredns@${COREDNS_VERSION}" \
    "-X github.com/coredns/coredns/coremain.GitCommit=${COREDNS_VERSION}"
  go_install_tool local-path-provisioner "github.com/rancher/local-path-provisioner@${LOCAL_PATH_VERSION}" \
    "-X main.VERSION=${LOCAL_PATH_VERSION}"
  go_install_tool kube-router "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@${KUBE_ROUTER_VERSION}" \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=${KUBE_ROUTER_VERSION}"
  log "all tools ready in ${BIN_DIR} (total $((SECONDS - t0))s)"
  check_all >&2
}

case "${1:-}" in
  "") build_all ;;
  --print-bin-dir) echo "${BIN_DIR}" ;;
  --check) check_all >/dev/null ;;
  --status) check_all ;;
  --regen) go_env; regen_etcd; regen_kubernetes; build_all ;;
  --force) rm -rf "${STAMP_DIR}"; build_all ;;
  -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac
