import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { PolicyStore, type RuntimePolicy } from './policy.js';
import { PolicyFileWatch } from './policy-file-watch.js';
import { startPolicyWatch } from './policy-watch.js';
import { memoryLogger, testMetrics, until } from './kubernetes/test-fakes.js';

const initial: RuntimePolicy = {
  cacheMaxEntries: 10_000,
  cacheMaxBytes: 33_554_432,
  cacheTtlMs: 60_000,
  loadBalancing: 'round-robin',
  consistencyMode: 'strict',
  invalidationTimeoutMs: 1000,
};

describe('PolicyFileWatch', () => {
  let dir: string;
  let file: string;
  let watch: PolicyFileWatch | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bazar-policy-'));
    file = path.join(dir, 'policy.json');
  });
  afterEach(async () => {
    await watch?.close();
    watch = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function started(policy: PolicyStore) {
    const { logger, records } = memoryLogger();
    watch = new PolicyFileWatch({ file, policy, logger, pollMs: 20 }).start();
    return records;
  }

  test('applies the file at start, then every change to it, as a StorePolicy spec', async () => {
    fs.writeFileSync(
      file,
      JSON.stringify({ consistencyMode: 'eventual', cache: { maxEntries: 3, maxBytes: 65_536 } }),
    );
    const policy = new PolicyStore(initial);
    started(policy);
    assert.equal(policy.current.consistencyMode, 'eventual');
    assert.equal(policy.current.cacheMaxEntries, 3);
    assert.equal(policy.current.cacheMaxBytes, 65_536);
    assert.match(policy.source, /^policy file /);

    // Written the way editors save: a new file renamed over the old one.
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ consistencyMode: 'session', cache: { ttlMs: 500 } }));
    fs.renameSync(`${file}.tmp`, file);
    await until(() => policy.current.consistencyMode === 'session', 3000, 'the renamed file applied');
    // Absent fields are left as they are, as with the custom resource.
    assert.deepEqual(policy.current, {
      ...initial,
      consistencyMode: 'session',
      cacheMaxEntries: 3,
      cacheMaxBytes: 65_536,
      cacheTtlMs: 500,
    });
  });

  test('a refused file (bad JSON, bad value, unknown field) leaves the last good policy in force, and says why', async () => {
    fs.writeFileSync(file, JSON.stringify({ consistencyMode: 'session' }));
    const policy = new PolicyStore(initial);
    const records = started(policy);
    const refusals = () => records.filter((r) => r.msg.startsWith('policy file refused'));
    const cases: Array<[string, RegExp]> = [
      ['{"consistencyMode": "eventual"', /not JSON/],
      [JSON.stringify({ consistencyMode: 'linearizable' }), /consistencyMode must be one of/],
      [JSON.stringify({ cache: { maxEntries: 0 } }), /cacheMaxEntries must be an integer/],
      [JSON.stringify({ cache: { maxBytes: 1023 } }), /cacheMaxBytes must be an integer in \[1024, /],
      [JSON.stringify({ cache: { maxBytes: 65_536.5 } }), /cacheMaxBytes must be an integer/],
      [JSON.stringify({ cache: { maxBytes: '32Mi' } }), /spec\.cache\.maxBytes must be a number/],
      [JSON.stringify({ consistencymode: 'eventual' }), /unknown field\(s\): consistencymode/],
      [JSON.stringify({ cache: { maxentries: 3 } }), /unknown field\(s\): cache\.maxentries/],
      [JSON.stringify(['eventual']), /must hold a JSON object/],
    ];
    for (const [i, [text, problem]] of cases.entries()) {
      fs.writeFileSync(file, text);
      await until(() => refusals().length === i + 1, 3000, `refusal of ${text}`);
      assert.match(String((refusals()[i]!['problems'] as string[])[0]), problem);
      assert.equal(policy.current.consistencyMode, 'session', 'the last good policy stays');
      assert.equal(policy.current.cacheMaxEntries, initial.cacheMaxEntries);
      assert.equal(policy.current.cacheMaxBytes, initial.cacheMaxBytes);
    }
    fs.writeFileSync(file, JSON.stringify({ consistencyMode: 'eventual' }));
    await until(() => policy.current.consistencyMode === 'eventual', 3000, 'a good file applied again');
  });

  test('a missing file is reported once and applied when it appears', async () => {
    const policy = new PolicyStore(initial);
    const records = started(policy);
    assert.equal(records.filter((r) => r.msg.startsWith('policy file not found')).length, 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(records.filter((r) => r.msg.startsWith('policy file not found')).length, 1, 'said once');
    fs.writeFileSync(file, JSON.stringify({ loadBalancing: 'random' }));
    await until(() => policy.current.loadBalancing === 'random', 3000, 'the new file applied');
  });

  test('is what startPolicyWatch runs with POLICY_FILE, and is refused beside Kubernetes discovery', async () => {
    fs.writeFileSync(file, JSON.stringify({ consistencyMode: 'eventual' }));
    const policy = new PolicyStore(initial);
    const { logger } = memoryLogger();
    const metrics = testMetrics();
    const config = {
      DISCOVERY: 'static' as const,
      POLICY_NAME: undefined,
      POLICY_FILE: file,
    } as Parameters<typeof startPolicyWatch>[0]['config'];
    const running = await startPolicyWatch({ config, policy, logger, metrics });
    assert.equal(policy.current.consistencyMode, 'eventual');
    assert.equal(running.synced(), true);
    await running.close();
    await assert.rejects(
      startPolicyWatch({ config: { ...config, DISCOVERY: 'kubernetes' }, policy, logger, metrics }),
      /POLICY_FILE is for static discovery/,
    );
  });
});
