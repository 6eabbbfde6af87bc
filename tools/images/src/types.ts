/** What a build produces, one per image; the cluster imports `archive` and the chart asks for `ref`. */
export interface ImageRecord {
  /**
   * 'pause' | 'node-standin' | 'postgres-standin' | 'front' | 'catalog' | 'order' | 'postgres-patroni' |
   * 'curl-standin' | 'coredns' | 'local-path-provisioner' | 'busybox-standin'
   */
  name: string;
  /** The fully qualified name containerd lists after `ctr -n k8s.io images import archive`. */
  ref: string;
  /** Absolute path of the docker-archive tar. */
  archive: string;
  /** sha256 of what the image is built from. */
  key: string;
}

/** Images only the builds use (the services' base): a cluster need not import them. */
export const BUILD_ONLY_IMAGES: readonly string[] = ['node-standin'];
