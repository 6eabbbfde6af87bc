#!/usr/bin/env bash
# skaffold against the project's own local cluster (tools/cluster, `npm run cluster -- up`), with the
# `bazar-cluster` profile of skaffold.yaml: the images built by tools/images (buildah) straight into the
# node's containerd, the chart installed by helm. No Docker and no registry here, so this wrapper:
#   - builds skaffold if needed (scripts/skaffold.sh) and puts it, helm and kubectl on PATH;
#   - points KUBECONFIG at the cluster's kubeconfig;
#   - serves the few Docker API calls skaffold's local builder makes (scripts/skaffold/docker-api.mjs,
#     backed by the node's containerd) on a socket of its own, as DOCKER_HOST, and stops it afterwards;
#   - runs `skaffold <command> -p bazar-cluster <args>`.
#
# Usage: bash scripts/skaffold/cluster.sh [--name CLUSTER] <skaffold command> [skaffold args...]
#   e.g. bash scripts/skaffold/cluster.sh run            # build, install, wait until Ready
#        bash scripts/skaffold/cluster.sh dev            # and rebuild/roll out on every change
#        bash scripts/skaffold/cluster.sh delete         # uninstall the release; nothing of it is left
# CLUSTER defaults to bazar (the cluster `npm run cluster -- up` starts); root, like the cluster.
set -euo pipefail

CLUSTER=bazar
if [[ "${1:-}" == "--name" ]]; then CLUSTER="${2:?--name needs a cluster name}"; shift 2; fi
[[ $# -ge 1 ]] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${DIR}/../.." && pwd)"
STATE="${BAZAR_CLUSTER_DIR:-/var/tmp/bazar-cluster}/${CLUSTER}"
[[ -f "${STATE}/kubeconfig" && -e "${STATE}/ns/mnt" ]] \
  || { echo "cluster ${CLUSTER} is not up (no ${STATE}/kubeconfig): npm run cluster -- up --name ${CLUSTER}" >&2; exit 1; }

bash "${ROOT}/scripts/skaffold.sh" >&2
BIN_DIR="$(bash "${ROOT}/scripts/skaffold.sh" --print-bin-dir)"

RUN_DIR="$(mktemp -d /tmp/bazar-skaffold.XXXXXX)"
SOCKET="${RUN_DIR}/docker.sock"
node "${DIR}/docker-api.mjs" --cluster "${CLUSTER}" --socket "${SOCKET}" 2> >(cat >&2) &
API_PID=$!
cleanup() {
  kill "${API_PID}" 2>/dev/null || true
  wait "${API_PID}" 2>/dev/null || true
  rm -rf "${RUN_DIR}"
}
trap cleanup EXIT
for _ in $(seq 100); do [[ -S "${SOCKET}" ]] && break; sleep 0.1; done
[[ -S "${SOCKET}" ]] || { echo "the Docker API stand-in did not start (${SOCKET})" >&2; exit 1; }

export PATH="${BIN_DIR}:${PATH}" KUBECONFIG="${STATE}/kubeconfig" DOCKER_HOST="unix://${SOCKET}"
export BAZAR_CLUSTER_NAME="${CLUSTER}"
# No usage reports or update checks from a machine without the network.
export SKAFFOLD_UPDATE_CHECK=false SKAFFOLD_COLLECT_METRICS=false
cd "${ROOT}"
command="$1"
shift
skaffold "${command}" -p bazar-cluster "$@"

# `delete` on this development cluster leaves nothing: after skaffold's helm uninstall, what Helm keeps by
# design goes too, with the commands docs/deploy.md ("Uninstall") gives: the Secret (its passwords match
# the volumes), the PostgreSQL volumes, Patroni's own ConfigMaps, a `helm test` pod, and the CRD once no
# StorePolicy of any release is left. The release is skaffold.yaml's: bazar, in the context's namespace.
if [[ "${command}" == "delete" ]]; then
  RELEASE=bazar NAME=bazar
  NAMESPACE="$(kubectl config view --minify -o jsonpath='{..namespace}')"
  NAMESPACE="${NAMESPACE:-default}"
  kubectl --namespace "$NAMESPACE" delete secret "$NAME" --ignore-not-found
  kubectl --namespace "$NAMESPACE" delete configmap -l app.kubernetes.io/instance="$RELEASE",cluster-name="$NAME-patroni" --ignore-not-found
  kubectl --namespace "$NAMESPACE" delete pod "$NAME-test-store" --ignore-not-found
  # A claim goes once no pod uses it: wait for the StatefulSet's pods to end.
  kubectl --namespace "$NAMESPACE" delete pvc -l app.kubernetes.io/instance="$RELEASE" --ignore-not-found --timeout=180s
  if [[ -z "$(kubectl get storepolicies.bazar.dev --all-namespaces -o name 2>/dev/null)" ]]; then
    kubectl delete crd storepolicies.bazar.dev --ignore-not-found
  fi
fi
