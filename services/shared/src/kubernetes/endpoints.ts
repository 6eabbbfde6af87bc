import type { V1Endpoint, V1EndpointSlice } from '@kubernetes/client-node';
import type { Endpoint } from '../discovery.js';

/**
 * Per the EndpointSlice API, a nil `ready` means ready ("should be interpreted as true"); a
 * terminating endpoint is never ready, so it is drained even if a writer forgot to clear `ready`.
 */
export function isReady(endpoint: V1Endpoint): boolean {
  const conditions = endpoint.conditions ?? {};
  return conditions.ready !== false && conditions.terminating !== true;
}

/** The slice's port that serves HTTP: the one named `portName`, or the only port when it is unnamed. */
export function httpPort(slice: V1EndpointSlice, portName: string): number | undefined {
  const ports = (slice.ports ?? []).filter(
    (p) => (p.protocol ?? 'TCP') === 'TCP' && typeof p.port === 'number',
  );
  const named = ports.find((p) => (p.name ?? '') === portName);
  if (named) return named.port;
  if (ports.length === 1 && !ports[0]?.name) return ports[0]?.port;
  return undefined;
}

function hostPart(address: string, addressType: string): string {
  return addressType === 'IPv6' || address.includes(':') ? `[${address}]` : address;
}

/**
 * Which endpoints of a Service are wanted: `ready` ones to send requests to, or `every` endpoint with
 * an address, also one not ready yet or terminating (the fronts, as targets of invalidations: a front
 * may answer from its cache before it is Ready in every watcher's eyes and after it is marked
 * terminating, while clients still reach it, and it must not miss a write meanwhile).
 */
export type EndpointSelection = 'ready' | 'every';

/**
 * The endpoints of a Service, merged over all of its slices, deduplicated by URL (an endpoint may sit
 * in two slices while the controller moves it) and sorted by name then URL, so every process sees the
 * same order and round-robin is stable.
 */
export function endpointsFromSlices(
  slices: readonly V1EndpointSlice[],
  portName: string,
  selection: EndpointSelection = 'ready',
): Endpoint[] {
  const byUrl = new Map<string, Endpoint>();
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue; // Deprecated and never written for pods.
    const port = httpPort(slice, portName);
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      const address = endpoint.addresses?.[0]; // The API says consumers use the first address.
      if (!address || (selection === 'ready' && !isReady(endpoint))) continue;
      const url = `http://${hostPart(address, slice.addressType)}:${port}`;
      const name = endpoint.targetRef?.name || endpoint.hostname || address;
      if (!byUrl.has(url)) byUrl.set(url, { name, url });
    }
  }
  return [...byUrl.values()].sort((a, b) => compare(a.name, b.name) || compare(a.url, b.url));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sameEndpoints(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  return a.length === b.length && a.every((e, i) => e.name === b[i]?.name && e.url === b[i]?.url);
}
