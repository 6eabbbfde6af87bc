import { EventEmitter } from 'node:events';
import type { NamedUrl } from './config.js';

/** A reachable instance of a service: its base URL and the pod or process name it answers with. */
export interface Endpoint {
  name: string;
  url: string;
}

/**
 * Where a service's instances are. The static source (laptop, CI) and the Kubernetes EndpointSlice
 * source implement the same interface, so callers never know which one they have.
 */
export interface Discovery extends EventEmitter<{ change: [readonly Endpoint[]] }> {
  readonly service: string;
  /** Ready endpoints, in a stable order. The array is replaced, never mutated, on change. */
  endpoints(): readonly Endpoint[];
  /** True once the first full view has been received (always true for a static list). */
  synced(): boolean;
  close(): Promise<void>;
}

export class StaticDiscovery extends EventEmitter<{ change: [readonly Endpoint[]] }> implements Discovery {
  #endpoints: readonly Endpoint[];

  constructor(
    readonly service: string,
    endpoints: readonly NamedUrl[],
  ) {
    super();
    this.#endpoints = Object.freeze(endpoints.map((e) => ({ name: e.name, url: e.url })));
  }

  endpoints(): readonly Endpoint[] {
    return this.#endpoints;
  }

  synced(): boolean {
    return true;
  }

  /** Replaces the list (used by tests and by operators reloading a static config). */
  set(endpoints: readonly Endpoint[]): void {
    this.#endpoints = Object.freeze([...endpoints]);
    this.emit('change', this.#endpoints);
  }

  async close(): Promise<void> {}
}
