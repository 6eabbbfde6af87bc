/**
 * The local cluster, as a library (for the test tier) — see cli.ts for `npm run cluster`:
 *
 *   const cluster = await up({ name: 'bazar' });     // node Ready, CoreDNS + default StorageClass
 *   await cluster.loadImages(records);               // docker-archives from tools/images
 *   await cluster.kubectl(['get', 'pods', '-A']);    // host kubectl via the loopback forwarder
 *   await cluster.helm(['install', 'bazar', 'charts/bazar', '-f', values]);
 *   await cluster.exec(['kubectl', 'get', 'nodes']); // inside the node's namespaces
 *   await cluster.down();                            // or down('bazar'): nothing is left behind
 */
export { attach, Cluster, ClusterAlreadyUpError, down, up } from './cluster.js';
export type { UpOptions } from './cluster.js';
export { status } from './status.js';
export type { ClusterStatus } from './status.js';
export type { ClusterImages, ImageRecord } from './images.js';
export { clusterLayout, DEFAULT_NETWORK } from './layout.js';
export type { ClusterLayout, ClusterNetwork } from './layout.js';
export { leftovers } from './teardown.js';
export type { DownReport } from './teardown.js';
export { missingHostRequirements, missingKubeBinaries } from './toolchain.js';
