/**
 * The flags node runs every service with. The devstack passes them, and so do the image's CMD
 * (Dockerfile) and the chart's container command (value `nodeFlags`); the chart tests check that all agree.
 * They are node command-line flags because node refuses them in NODE_OPTIONS, and V8 reads them when
 * the heap is set up (v8.setFlagsFromString at start-up is too late).
 *
 * --no-memory-reducer: when a service goes idle, V8's memory reducer runs memory-reducing full GCs
 * that shrink the young generation and drop the state the hot paths had warmed; a front that had
 * been idle for two minutes then answered cache hits at 1.50x the bare node:http server's CPU per hit,
 * against 1.26x with the reducer off and 1.32x for a front that never idled (same CPU at the same
 * time, `npm run bench -- --ladder`; docs/performance.md). The cost: an idle pod keeps the heap it
 * had under load (tens of MiB) instead of returning part of it.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--no-memory-reducer'];
