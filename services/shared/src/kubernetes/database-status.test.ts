import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PrimaryFacts } from '../db/primary-identity.js';
import { nextDatabaseStatus, writeDatabaseStatus } from './database-status.js';
import type { StatusApi } from './status-writer.js';
import type { StorePolicyObject } from './store-policy.js';

const facts = (member: string, timeline: number, systemIdentifier = '7001'): PrimaryFacts => ({
  member,
  timeline,
  systemIdentifier,
  since: '2026-12-06T10:00:00.000Z',
});

test('status.database: the newest primary wins, so a writer that noticed a failover late cannot undo it', () => {
  const first = nextDatabaseStatus(undefined, facts('pg-0', 1), 'order-0');
  assert.deepEqual(first, {
    primary: 'pg-0',
    timeline: 1,
    systemIdentifier: '7001',
    observedBy: 'order-0',
    lastTransitionTime: '2026-12-06T10:00:00.000Z',
  });
  assert.equal(nextDatabaseStatus(first, facts('pg-0', 1), 'catalog-origin-0'), undefined, 'nothing new');
  const promoted = nextDatabaseStatus(first, facts('pg-1', 2), 'catalog-origin-0');
  assert.equal(promoted?.primary, 'pg-1');
  assert.equal(nextDatabaseStatus(promoted, facts('pg-0', 1), 'order-0'), undefined, 'an older timeline');
  const rebuilt = nextDatabaseStatus(promoted, facts('pg-0', 1, '8002'), 'order-0');
  assert.equal(rebuilt?.timeline, 1, 'another cluster (new system identifier) starts again at timeline 1');
});

test('writeDatabaseStatus re-reads on a resourceVersion conflict and patches only status.database', async () => {
  let resource: StorePolicyObject = {
    metadata: { resourceVersion: '1' },
    status: { consistencyMode: 'strict' },
  };
  const patches: object[] = [];
  let conflicts = 1;
  const api: StatusApi = {
    get: async () => resource,
    patch: async (body) => {
      if (conflicts-- > 0) {
        resource = { ...resource, metadata: { resourceVersion: '2' } };
        throw Object.assign(new Error('conflict'), { code: 409 });
      }
      patches.push(body);
    },
  };
  assert.equal(await writeDatabaseStatus(api, facts('pg-1', 2), 'order-0'), 'written');
  assert.equal(patches.length, 1);
  const patch = patches[0] as { metadata: { resourceVersion: string }; status: Record<string, unknown> };
  assert.equal(
    patch.metadata.resourceVersion,
    '2',
    'sent with the resourceVersion it read after the conflict',
  );
  assert.deepEqual(Object.keys(patch.status), ['database']);
  assert.equal(
    await writeDatabaseStatus({ ...api, get: async () => undefined }, facts('pg-1', 2), 'x'),
    'missing',
  );
});
