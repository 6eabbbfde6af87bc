#!/usr/bin/env bash
# skaffold's custom builder for the `bazar-cluster` profile (skaffold.yaml): builds the artifact skaffold
# asks for with the project's image tool (tools/images, buildah, no Docker) and puts it into the node's
# containerd of the local cluster (tools/cluster) under the name skaffold chose, $IMAGE.
#
# skaffold runs it in the artifact's context with IMAGE (e.g. bazar-front:<input digest>) and
# PUSH_IMAGE set; the cluster is $BAZAR_CLUSTER_NAME (default bazar), which scripts/skaffold/cluster.sh
# sets. Steps:
#   1. `npm run images -- build <name>` (bazar-front → front, bazar-postgres-patroni → postgres-patroni):
#      the image tool's own cache key decides whether anything is built; it writes a docker-archive;
#   2. `npm run cluster -- load <archive>`: ctr imports it into the node (as the cluster tier does);
#   3. ctr tags the imported image (docker.io/library/bazar-front:<tool key>) as $IMAGE.
# No registry: the image lives where the kubelet looks for it. skaffold then asks "the local Docker
# daemon" for the image's ID (its custom builder with push: false always does), which here is
# scripts/skaffold/docker-api.mjs: the node's containerd seen through the few Docker API calls skaffold
# makes.
set -euo pipefail

: "${IMAGE:?IMAGE is not set (the custom builder of skaffold sets it)}"
if [[ "${PUSH_IMAGE:-false}" == "true" ]]; then
  echo "build-image.sh: skaffold asked to push ${IMAGE}, but there is no registry here: the bazar-cluster" \
    "profile builds into the cluster's containerd (build.local.push: false; do not pass --push)" >&2
  exit 1
fi
CLUSTER="${BAZAR_CLUSTER_NAME:-bazar}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${BAZAR_CLUSTER_DIR:-/var/tmp/bazar-cluster}/${CLUSTER}"

repo="${IMAGE%:*}"
[[ "${repo}" != "${IMAGE}" && "${repo}" != *@* ]] || { echo "build-image.sh: ${IMAGE} has no tag" >&2; exit 1; }
base="${repo##*/}"
name="${base#bazar-}"

# containerd's names: a reference without a registry host is Docker Hub's (tools/cluster/src/images.ts).
normalise() {
  local first="${1%%/*}"
  if [[ "$1" == */* && ( "${first}" == *.* || "${first}" == *:* || "${first}" == localhost ) ]]; then
    echo "$1"
  elif [[ "$1" == */* ]]; then
    echo "docker.io/$1"
  else
    echo "docker.io/library/$1"
  fi
}

t0=${SECONDS}
cd "${ROOT}"
# 1. Build (or find in the tool's cache). The table's row for the image: name, ref, size ("n MiB"), archive.
out="$(npm run --silent images -- build "${name}")"
printf '%s\n' "${out}" >&2
row="$(printf '%s\n' "${out}" | awk -v n="${name}" '$1 == n')"
ref="$(awk '{print $2}' <<< "${row}")"
archive="$(awk '{print $NF}' <<< "${row}")"
[[ -n "${ref}" && -f "${archive}" ]] || { echo "build-image.sh: the image tool built no ${name} (from ${IMAGE})" >&2; exit 1; }
t1=${SECONDS}

# 2. Import into every node (ctr skips the content it already has).
node dist/tools/cluster/src/cli.js load --name "${CLUSTER}" "${archive}" >&2

# 3. The name skaffold chose, on every node: the control plane's namespaces and each worker's.
for ns in "${STATE}/ns" "${STATE}"/nodes/*/ns; do
  [[ -e "${ns}/net" ]] || continue
  nsenter --net="${ns}/net" --mount="${ns}/mnt" -- \
    ctr --address /run/containerd/containerd.sock --namespace k8s.io \
    images tag --force "$(normalise "${ref}")" "$(normalise "${IMAGE}")" >&2
done
echo "build-image.sh: ${IMAGE} is ${ref} in cluster ${CLUSTER} (build $((t1 - t0))s, import $((SECONDS - t1))s)" >&2
