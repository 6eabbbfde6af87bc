/** Stand-in for the `k6` module: check, group, sleep, fail, randomSeed. */
import { performance } from 'node:perf_hooks';
import { K6Error, runtime, toTags } from '../runtime.js';

function validName(kind: string, name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new K6Error(`${kind} name must be a non-empty string`);
  if (name.includes('::')) throw new K6Error(`${kind} name "${name}" must not contain "::"`);
  return name;
}

/**
 * Runs each named check against `val` (a function is called with it; another value counts by its
 * truthiness), records it on the `checks` rate, and returns true when all passed.
 */
export function check(val: unknown, sets: unknown, tags?: unknown): boolean {
  runtime.requireVuContext('check()');
  if (typeof sets !== 'object' || sets === null || Array.isArray(sets)) {
    throw new K6Error('check(): the second argument must be an object of named checks');
  }
  const extra = toTags(tags, 'check()');
  let all = true;
  for (const [name, test] of Object.entries(sets as Record<string, unknown>)) {
    validName('check', name);
    const ok = Boolean(typeof test === 'function' ? (test as (v: unknown) => unknown)(val) : test);
    runtime.recordCheck(name, ok, extra);
    if (!ok) all = false;
  }
  return all;
}

export function group<T>(name: string, fn: () => T): T {
  runtime.requireVuContext('group()');
  validName('group', name);
  if (typeof fn !== 'function') throw new K6Error('group(): the second argument must be a function');
  if (fn.constructor?.name === 'AsyncFunction') {
    throw new K6Error('group(): async functions are not supported by k6 groups');
  }
  const outer = runtime.groupPath;
  runtime.groupPath = `${outer}::${name}`;
  const start = performance.now();
  try {
    return fn();
  } finally {
    runtime.addSample('group_duration', performance.now() - start, runtime.baseTags());
    runtime.groupPath = outer;
  }
}

export function sleep(seconds: number): void {
  runtime.requireVuContext('sleep()');
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new K6Error(`sleep(): seconds must be a non-negative number, got ${String(seconds)}`);
  }
  runtime.sleep(seconds);
}

export function fail(message?: string): never {
  throw new K6Error(message ?? 'fail() called');
}

export function randomSeed(_seed: number): void {
  runtime.requireInitContext('randomSeed()');
}

export default { check, group, sleep, fail, randomSeed };
