import * as fs from 'node:fs';
import { specToPolicy } from './kubernetes/store-policy.js';
import type { Logger } from './logger.js';
import { validatePolicy, type PolicyStore, type RuntimePolicy } from './policy.js';
import type { PolicyWatch } from './policy-watch.js';

/** How often the file is looked at: a change is in force everywhere within about this long. */
export const POLICY_FILE_POLL_MS = 100;

/**
 * The StorePolicy's spec kept in a local JSON file instead of a custom resource (POLICY_FILE, for a store
 * run without Kubernetes: `npm start` writes it, `npm run ctl -- policy` and people edit it). The same
 * path as on Kubernetes from the spec on: `specToPolicy`, then `PolicyStore.update`, so a refused file
 * (bad JSON, a bad value) leaves the last good policy in force exactly as a refused StorePolicy does.
 * Fields absent from the file are left as they are, as with the resource.
 *
 * Polled with stat rather than fs.watch: an editor that saves by renaming a new file over the old one
 * would end an fs.watch, and polling sees every kind of write the same way (a stat every 100 ms).
 */
export class PolicyFileWatch implements PolicyWatch {
  #lastText: string | undefined;
  /** The stat (inode, size, mtime) of the file as last read: a poll that sees another one reads it again. */
  #lastStat = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: { file: string; policy: PolicyStore; logger: Logger; pollMs?: number },
  ) {}

  /** Applies the file as it is now, then follows it. A missing file is reported and waited for. */
  start(): this {
    this.#read();
    this.#timer = setInterval(() => this.#read(), this.opts.pollMs ?? POLICY_FILE_POLL_MS);
    this.#timer.unref();
    return this;
  }

  synced(): boolean {
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The stat is taken before the read: a change between the two shows as a new stat at the next poll
   * (fs.watchFile's first stat, taken after start() read the file, could miss such a change for good).
   */
  #read(): void {
    const { file, policy, logger } = this.opts;
    let text: string;
    try {
      const st = fs.statSync(file);
      const stat = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (stat === this.#lastStat) return;
      this.#lastStat = stat;
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      if (this.#lastText !== '') {
        logger.warn(
          { file, inForce: policy.current, ...(missing ? {} : { err }) },
          missing
            ? 'policy file not found; the current policy stays in force'
            : 'policy file unreadable; the current policy stays in force',
        );
      }
      this.#lastText = '';
      this.#lastStat = '';
      return;
    }
    if (text === this.#lastText) return;
    this.#lastText = text;
    const result = this.#apply(text);
    if (result.applied) logger.info({ file, policy: policy.current }, 'policy file applied');
    else
      logger.error(
        { file, problems: result.problems, inForce: policy.current },
        'policy file refused; the last good policy stays in force',
      );
  }

  #apply(text: string): { applied: boolean; problems: string[] } {
    let spec: unknown;
    try {
      spec = JSON.parse(text);
    } catch (err) {
      return { applied: false, problems: [`not JSON: ${(err as Error).message}`] };
    }
    const parsed = readPolicySpec(spec);
    if (parsed.problems.length > 0) return { applied: false, problems: parsed.problems };
    return this.opts.policy.update(parsed.change, `policy file ${this.opts.file}`);
  }
}

/** A policy file's content read as a change of policy, or why it is refused (nothing of it applies then). */
export function readPolicySpec(spec: unknown): { change: Partial<RuntimePolicy>; problems: string[] } {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    return { change: {}, problems: ['the file must hold a JSON object (a StorePolicy spec)'] };
  }
  const unknown = unknownFields(spec as Record<string, unknown>);
  if (unknown.length > 0) return { change: {}, problems: [`unknown field(s): ${unknown.join(', ')}`] };
  const parsed = specToPolicy(spec);
  return { change: parsed.change, problems: [...parsed.problems, ...validatePolicy(parsed.change)] };
}

/**
 * The spec's fields (charts/bazar/crds/storepolicies.yaml). The API server prunes unknown fields; a file
 * has no schema in front of it, so a typo such as `consistencymode` is refused here rather than ignored.
 */
const SPEC_FIELDS = new Set(['consistencyMode', 'loadBalancing', 'cache', 'invalidationTimeoutMs']);
const CACHE_FIELDS = new Set(['maxEntries', 'maxBytes', 'ttlMs']);

function unknownFields(spec: Record<string, unknown>): string[] {
  const unknown = Object.keys(spec).filter((k) => !SPEC_FIELDS.has(k));
  const cache = spec['cache'];
  if (typeof cache === 'object' && cache !== null && !Array.isArray(cache)) {
    unknown.push(
      ...Object.keys(cache)
        .filter((k) => !CACHE_FIELDS.has(k))
        .map((k) => `cache.${k}`),
    );
  }
  return unknown;
}
