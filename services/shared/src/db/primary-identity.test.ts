import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import type { Database } from './database.js';
import { PrimaryIdentity } from './primary-identity.js';

/** What the identity query answers next: a row, or an error thrown. */
type Answer = { member: string; in_recovery: boolean; timeline: number | null } | Error;

function identityOver(answers: Answer[]) {
  const metrics = createMetrics({ service: 'order', podName: 'order-0', defaultMetrics: false });
  const db = {
    query: async () => {
      const next = answers.shift()!;
      if (next instanceof Error) throw next;
      return { rows: [{ ...next, system_identifier: '7300000000000000001' }] };
    },
  } as unknown as Database;
  const identity = new PrimaryIdentity({
    db,
    logger: createLogger({ name: 'test', level: 'silent' }),
    metrics,
    intervalMs: 60_000,
  });
  const up = async () => {
    const text = await metrics.registry.metrics();
    return Number(/^bazar_db_primary_up\{[^}]*\} (\S+)$/m.exec(text)?.[1]);
  };
  return { identity, up };
}

describe('bazar_db_primary_up', () => {
  it('is 0 until a poll reaches a primary, 1 while polls do, 0 when one fails or finds a standby', async () => {
    const { identity, up } = identityOver([
      { member: 'pg-0', in_recovery: false, timeline: 1 },
      new Error('connect ECONNREFUSED 10.0.0.5:5432'),
      { member: 'pg-1', in_recovery: true, timeline: null },
      { member: 'pg-1', in_recovery: false, timeline: 2 },
    ]);
    assert.equal(await up(), 0, 'no poll yet');
    await identity.refresh();
    assert.equal(await up(), 1, 'a primary reached');
    await identity.refresh();
    assert.equal(await up(), 0, 'the poll failed');
    assert.match(identity.report().error ?? '', /ECONNREFUSED/);
    await identity.refresh();
    assert.equal(await up(), 0, 'a standby answered behind the primary Service');
    await identity.refresh();
    assert.equal(await up(), 1, 'the promoted primary reached');
    assert.equal(identity.facts?.member, 'pg-1');
  });
});
