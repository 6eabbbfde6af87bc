/**
 * Whether this machine can run the cluster tier, and if not, why. Used by scripts/run-tests.mjs (which
 * prints `NOT RUN: ...` and, under CI, fails) and by the tier itself (the same verdict when a file is
 * run on its own with `node --test`).
 *
 * The tier needs: root (network and mount namespaces, cgroups, mounts, buildah), the Kubernetes binaries
 * and helm from scripts/k8s-tools.sh, the host packages of the node (containerd, runc, CNI plugins, ...:
 * tools/cluster), those of the NetworkPolicy scenarios (ipset, kube-router) and of the image builds
 * (buildah, debootstrap, ...: tools/images). `npm run cluster -- prepare --all-images --network-policy`
 * installs the packages and builds the images ahead; .ci/run calls it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { missingHostRequirements, missingKubeBinaries } from '../../tools/cluster/src/index.js';
import { HOST_PACKAGES, missingPackages } from '../../tools/images/src/packages.js';

/** BAZAR_TOOLS_BIN, else ${BAZAR_TOOLS_DIR:-~/.cache/bazar-tools}/bin (as tools/cluster looks them up). */
function toolsBinDir(): string {
  if (process.env.BAZAR_TOOLS_BIN) return process.env.BAZAR_TOOLS_BIN;
  const home = process.env.HOME ?? '/root';
  return path.join(process.env.BAZAR_TOOLS_DIR || path.join(home, '.cache', 'bazar-tools'), 'bin');
}

/** Why the cluster tier cannot run here, or undefined when it can. */
export async function clusterTierBlocker(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) {
    return 'it needs root (network and mount namespaces, cgroups, mounts, image builds with buildah)';
  }
  const kube = missingKubeBinaries();
  for (const tool of ['helm', 'kube-router'])
    if (!existsSync(path.join(toolsBinDir(), tool))) kube.push(tool);
  if (kube.length > 0) {
    return `missing ${kube.join(', ')} in ${toolsBinDir()}: build them with \`bash scripts/k8s-tools.sh\``;
  }
  const node = missingHostRequirements({ networkPolicy: true }).map((r) => `${r.file} (${r.pkg})`);
  const images = await missingPackages(HOST_PACKAGES).catch(() => [...HOST_PACKAGES]);
  if (node.length > 0 || images.length > 0) {
    return (
      `missing host packages: ${[...node, ...images].join(', ')}; ` +
      '`npm run cluster -- prepare --all-images --network-policy` installs them (apt-get) and builds the images'
    );
  }
  return undefined;
}
