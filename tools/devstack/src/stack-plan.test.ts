/** The launcher's plan without starting anything: names, ports, the wiring environment, the order. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  allProcesses,
  assignPorts,
  fixedPorts,
  freePortsNeeded,
  planStack,
  serviceEnv,
  startStages,
  STOP_ORDER,
  type ProcessSpec,
  type StackPlan,
  type Wiring,
} from './stack-plan.js';

const names = (specs: ProcessSpec[]): string[] => specs.map((s) => s.name);
const plan = planStack({ dataDir: '/x', fronts: 2, catalogReplicas: 1, orderReplicas: 2 });

describe('stack plan: processes', () => {
  test('one origin per service plus its replicas, then the fronts', () => {
    assert.deepEqual(names(plan.services), [
      'catalog-origin-0',
      'catalog-replica-0',
      'order-origin-0',
      'order-replica-0',
      'order-replica-1',
    ]);
    assert.deepEqual(plan.fronts, [
      { name: 'front-0', service: 'front', role: 'front' },
      { name: 'front-1', service: 'front', role: 'front' },
    ]);
    assert.deepEqual(plan.services[1], { name: 'catalog-replica-0', service: 'catalog', role: 'replica' });
    assert.deepEqual(names(allProcesses(plan)).slice(-2), ['front-0', 'front-1']);
  });

  test('defaults: one front, one replica each, strict, random distinct tokens', () => {
    const p = planStack({ dataDir: '/x' });
    assert.deepEqual(names(p.services), [
      'catalog-origin-0',
      'catalog-replica-0',
      'order-origin-0',
      'order-replica-0',
    ]);
    assert.deepEqual(names(p.fronts), ['front-0']);
    assert.equal(p.mode, 'strict');
    assert.match(p.adminToken, /^[0-9a-f]{48}$/);
    assert.notEqual(p.adminToken, p.internalToken);
    const given = planStack({
      dataDir: '/x',
      adminToken: 'a',
      internalToken: 'i',
      consistencyMode: 'eventual',
    });
    assert.deepEqual([given.adminToken, given.internalToken, given.mode], ['a', 'i', 'eventual']);
  });

  test('bad counts and a standby without a primary are refused', () => {
    assert.throws(
      () => planStack({ dataDir: '/x', fronts: 0 }),
      /^Error: fronts must be an integer from 1 to 64, got 0$/,
    );
    assert.throws(
      () => planStack({ dataDir: '/x', orderReplicas: 1.5 }),
      /^Error: orderReplicas must be an integer from 0 to 64, got 1.5$/,
    );
    assert.throws(
      () => planStack({ dataDir: '/x', catalogReplicas: 65 }),
      /catalogReplicas must be an integer/,
    );
    assert.throws(
      () => planStack({ dataDir: '/x', replicaDatabaseUrl: 'postgres://s' }),
      /^Error: replicaDatabaseUrl needs databaseUrl$/,
    );
  });
});

describe('stack plan: ports', () => {
  test('given ports are consecutive from the first; found ones fill the rest, Postgres last', () => {
    const fixed = fixedPorts({ frontPort: 8080 }, plan);
    assert.deepEqual(fixed, { fronts: [8080, 8081], services: [] });
    assert.equal(freePortsNeeded(plan, fixed, true), 5 + 2);
    const ports = assignPorts(plan, fixed, [1, 2, 3, 4, 5, 6, 7], true);
    assert.deepEqual(Object.fromEntries(ports.portOf), {
      'front-0': 8080,
      'front-1': 8081,
      'catalog-origin-0': 1,
      'catalog-replica-0': 2,
      'order-origin-0': 3,
      'order-replica-0': 4,
      'order-replica-1': 5,
    });
    assert.deepEqual(ports.postgres, { primary: 6, standby: 7 });
  });

  test('a service port base, no embedded Postgres', () => {
    const fixed = fixedPorts({ servicePortBase: 9000 }, plan);
    assert.deepEqual(fixed, { fronts: [], services: [9000, 9001, 9002, 9003, 9004] });
    assert.equal(freePortsNeeded(plan, fixed, false), 2);
    const ports = assignPorts(plan, fixed, [40, 41], false);
    assert.equal(ports.portOf.get('front-1'), 41);
    assert.equal(ports.portOf.get('order-replica-1'), 9004);
    assert.equal(ports.postgres, undefined);
    assert.deepEqual(fixedPorts({ frontPort: 0 }, plan).fronts, [], 'port 0 = any free port');
  });

  test('too few found ports is an internal error', () => {
    assert.throws(
      () => assignPorts(plan, { fronts: [], services: [] }, [1], false),
      /ran out of pre-allocated ports/,
    );
  });
});

describe('stack plan: environment', () => {
  const small: StackPlan = planStack({
    dataDir: '/x',
    fronts: 2,
    catalogReplicas: 1,
    orderReplicas: 0,
    adminToken: 'admin-token',
    internalToken: 'internal-token',
  });
  const ports = assignPorts(small, { fronts: [8080, 8081], services: [] }, [7001, 7002, 7003], false);
  const wiring = (options: Wiring['options'] = {}): Wiring => ({
    plan: small,
    portOf: ports.portOf,
    primaryUrl: 'postgres://p',
    standbyUrl: 'postgres://s',
    options,
  });
  const spec = (name: string): ProcessSpec => allProcesses(small).find((s) => s.name === name) as ProcessSpec;
  const base = { PATH: '/bin', NODE_TEST_CONTEXT: 'child', LOG_LEVEL: 'trace' };

  test('every process: its name, loopback port, tokens, mode, static discovery; no test context', () => {
    const env = serviceEnv(spec('front-1'), wiring(), base);
    assert.equal(env['PATH'], '/bin');
    assert.equal('NODE_TEST_CONTEXT' in env, false);
    assert.equal(env['SERVICE_NAME'], 'front-1');
    assert.equal(env['HOST'], '127.0.0.1');
    assert.equal(env['PORT'], '8081');
    assert.equal(env['LOG_LEVEL'], 'info', "the stack's level, not the launcher's");
    assert.equal(env['ADMIN_TOKEN'], 'admin-token');
    assert.equal(env['INTERNAL_TOKEN'], 'internal-token');
    assert.equal(env['CONSISTENCY_MODE'], 'strict');
    assert.equal(env['DISCOVERY'], 'static');
    assert.equal(env['SHUTDOWN_DELAY_MS'], '0');
  });

  test('a front knows every catalog and order process by name', () => {
    const env = serviceEnv(spec('front-0'), wiring({ cacheMaxEntries: 10, cacheTtlMs: 500 }), base);
    assert.equal(
      env['CATALOG_URLS'],
      'catalog-origin-0=http://127.0.0.1:7001,catalog-replica-0=http://127.0.0.1:7002',
    );
    assert.equal(env['ORDER_URLS'], 'order-origin-0=http://127.0.0.1:7003');
    assert.equal(env['CACHE_MAX_ENTRIES'], '10');
    assert.equal(env['CACHE_TTL_MS'], '500');
    assert.equal(env['DATABASE_URL'], undefined);
  });

  test('catalog and order processes: their role, both databases, the fronts to invalidate', () => {
    const fronts = 'front-0=http://127.0.0.1:8080,front-1=http://127.0.0.1:8081';
    const catalog = serviceEnv(spec('catalog-replica-0'), wiring(), base);
    assert.equal(catalog['ROLE'], 'replica');
    assert.equal(catalog['DATABASE_URL'], 'postgres://p');
    assert.equal(catalog['DATABASE_REPLICA_URL'], 'postgres://s');
    assert.equal(catalog['CATALOG_ORIGIN_URLS'], 'http://127.0.0.1:7001');
    assert.equal(catalog['FRONT_URLS'], fronts);
    const order = serviceEnv(spec('order-origin-0'), wiring(), base);
    assert.equal(order['ROLE'], 'origin');
    assert.equal(order['DATABASE_URL'], 'postgres://p');
    assert.equal(order['DATABASE_REPLICA_URL'], 'postgres://s');
    assert.equal(order['FRONT_URLS'], fronts);
    assert.equal(order['CATALOG_ORIGIN_URLS'], undefined);
    assert.equal(order['CACHE_TTL_MS'], undefined);
  });

  test("the caller's extras win: env, then envFor", () => {
    const env = serviceEnv(
      spec('order-origin-0'),
      wiring({
        logLevel: 'warn',
        env: { SYNC_COMMIT_TIMEOUT_MS: '500', PORT: '1' },
        envFor: (p): Record<string, string> => (p.role === 'origin' ? { PORT: '2' } : {}),
      }),
      base,
    );
    assert.equal(env['LOG_LEVEL'], 'warn');
    assert.equal(env['SYNC_COMMIT_TIMEOUT_MS'], '500');
    assert.equal(env['PORT'], '2');
  });
});

describe('stack plan: order', () => {
  test('origins, then replicas, then fronts; stopped the other way round', () => {
    assert.deepEqual(startStages(plan).map(names), [
      ['catalog-origin-0', 'order-origin-0'],
      ['catalog-replica-0', 'order-replica-0', 'order-replica-1'],
      ['front-0', 'front-1'],
    ]);
    assert.deepEqual(STOP_ORDER, ['front', 'replica', 'origin']);
  });
});
