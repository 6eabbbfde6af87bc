/** Stand-in for `k6/data`: SharedArray, a read-only array-like made once in the init context. */
import { K6Error, runtime } from '../runtime.js';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Like k6's SharedArray it offers `length`, index access and for-of iteration only (no map, filter,
 * ...), its elements are JSON copies, and writes fail.
 */
export class SharedArray {
  constructor(name: string, fn: () => unknown) {
    runtime.requireInitContext('new SharedArray()');
    if (typeof name !== 'string' || name === '')
      throw new K6Error('SharedArray: name must be a non-empty string');
    if (typeof fn !== 'function') throw new K6Error('SharedArray: the second argument must be a function');
    let data = runtime.sharedArrays.get(name) as unknown[] | undefined;
    if (!data) {
      const made = fn();
      if (!Array.isArray(made)) throw new K6Error(`SharedArray "${name}": the function must return an array`);
      data = deepFreeze(JSON.parse(JSON.stringify(made)) as unknown[]);
      runtime.sharedArrays.set(name, data);
    }
    const items = data;
    const iterator = function* () {
      yield* items;
    };
    return new Proxy(Object.create(null) as object, {
      get(_t, prop) {
        if (prop === 'length') return items.length;
        if (prop === Symbol.iterator) return iterator;
        if (typeof prop === 'string' && /^(0|[1-9]\d*)$/.test(prop)) return items[Number(prop)];
        return undefined;
      },
      has(_t, prop) {
        return (
          prop === 'length' ||
          (typeof prop === 'string' && /^(0|[1-9]\d*)$/.test(prop) && Number(prop) < items.length)
        );
      },
      set() {
        throw new K6Error(`SharedArray "${name}" is read-only`);
      },
      deleteProperty() {
        throw new K6Error(`SharedArray "${name}" is read-only`);
      },
      defineProperty() {
        throw new K6Error(`SharedArray "${name}" is read-only`);
      },
    }) as SharedArray;
  }
}

export default { SharedArray };
