/** Stand-in for `k6/metrics`: Counter, Gauge, Rate and Trend custom metrics. */
import type { MetricType } from '../protocol.js';
import { K6Error, runtime, toTags } from '../runtime.js';

/** k6's accepted metric names (Prometheus-compatible; k6 v1 rejects others). */
const NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;

abstract class Metric {
  readonly name: string;
  readonly #type: MetricType;

  constructor(type: MetricType, name: string, isTime = false) {
    runtime.requireInitContext(`new ${type} metric`);
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new K6Error(`invalid metric name "${String(name)}": use letters, digits and _ (max 128)`);
    }
    const existing = runtime.metrics.get(name);
    const contains = isTime ? 'time' : 'default';
    if (existing && (existing.builtin || existing.type !== type || existing.contains !== contains)) {
      throw new K6Error(`metric "${name}" already exists as a ${existing.type}`);
    }
    runtime.metrics.set(name, { type, contains, builtin: false });
    this.name = name;
    this.#type = type;
  }

  add(value: number | boolean, tags?: Record<string, unknown>): boolean {
    runtime.requireVuContext(`${this.name}.add()`);
    if (typeof value !== 'number' && typeof value !== 'boolean') {
      throw new K6Error(`${this.name}.add(): value must be a number or a boolean, got ${typeof value}`);
    }
    let v = Number(value);
    if (this.#type === 'rate') v = v !== 0 ? 1 : 0;
    runtime.addSample(this.name, v, { ...runtime.baseTags(), ...toTags(tags, `${this.name}.add()`) });
    return true;
  }
}

export class Counter extends Metric {
  constructor(name: string, isTime?: boolean) {
    super('counter', name, isTime);
  }
}

export class Gauge extends Metric {
  constructor(name: string, isTime?: boolean) {
    super('gauge', name, isTime);
  }
}

export class Rate extends Metric {
  constructor(name: string) {
    super('rate', name, false);
  }
}

export class Trend extends Metric {
  constructor(name: string, isTime?: boolean) {
    super('trend', name, isTime);
  }
}

export default { Counter, Gauge, Rate, Trend };
