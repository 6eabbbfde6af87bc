/**
 * The launcher itself, with the real compiled services: start order and readiness,
 * environment wiring (X-Served-By names), kill/restart of one process, start-up
 * failures that reject with the child's output, and a stop() that leaves nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pgDataDirs } from './postgres-cluster.js';
import { startStack, type Stack } from './stack.js';

function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function get(url: string): Promise<{ status: number; servedBy: string | null }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  return { status: res.status, servedBy: res.headers.get('x-served-by') };
}

describe('devstack launcher', { timeout: 180_000 }, () => {
  let dataDir: string;
  let stack: Stack | undefined;
  const lines: string[] = [];

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bazar-stack-test-'));
    stack = await startStack({
      dataDir,
      fronts: 2,
      catalogReplicas: 1,
      orderReplicas: 1,
      fsync: false,
      logLevel: 'warn',
      logDir: path.join(dataDir, 'logs'),
      log: (proc, line) => lines.push(`${proc}: ${line}`),
    });
  });

  after(async () => {
    await stack?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  test('every process is up under its name, on loopback, with an embedded Postgres pair', async () => {
    assert.ok(stack);
    assert.deepEqual(
      stack.all.map((p) => `${p.name}/${p.service}/${p.role}`),
      [
        'front-0/front/front',
        'front-1/front/front',
        'catalog-origin-0/catalog/origin',
        'catalog-replica-0/catalog/replica',
        'order-origin-0/order/origin',
        'order-replica-0/order/replica',
      ],
    );
    assert.ok(stack.pg, 'no DATABASE_URL given: embedded Postgres');
    assert.notEqual(stack.primaryUrl, stack.standbyUrl);
    assert.ok(stack.adminToken.length >= 32 && stack.internalToken.length >= 32);
    assert.notEqual(stack.adminToken, stack.internalToken);
    for (const p of stack.all) {
      assert.match(p.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(p.running() && p.pid() !== undefined, `${p.name} running`);
      assert.equal((await get(`${p.url}/readyz`)).status, 200, `${p.name} ready`);
    }
    for (const f of stack.fronts) {
      const r = await get(`${f.url}/info/1`);
      assert.equal(r.status, 200);
      assert.match(r.servedBy ?? '', /^catalog-(origin|replica)-0$/);
    }
    for (const p of stack.all)
      assert.ok(existsSync(path.join(dataDir, 'logs', `${p.name}.log`)), `${p.name}.log`);
  });

  test('a process can be killed and restarted on the same URL', async () => {
    assert.ok(stack);
    const victim = stack.catalogs.find((c) => c.role === 'replica');
    assert.ok(victim);
    const oldPid = victim.pid();
    assert.ok(oldPid);
    await victim.kill('SIGKILL');
    assert.equal(victim.running(), false);
    assert.equal(victim.pid(), undefined);
    assert.equal(isRunning(oldPid), false);
    await victim.start();
    assert.ok(victim.running());
    assert.notEqual(victim.pid(), oldPid);
    assert.equal((await get(`${victim.url}/readyz`)).status, 200);
    // SIGTERM is a clean exit.
    await victim.kill();
    assert.ok(
      lines.some((l) => l === `${victim.name}: --- exited (code 0) ---`),
      'SIGTERM exits with code 0',
    );
    await victim.start();
  });

  test('a start-up failure rejects with the child output and leaves nothing running', async () => {
    assert.ok(stack);
    const bad = path.join(dataDir, 'bad-main.mjs');
    await fs.writeFile(bad, "console.error('cannot start: on purpose'); process.exit(3);\n");
    const t0 = Date.now();
    await assert.rejects(
      startStack({
        dataDir: path.join(dataDir, 'unused'),
        databaseUrl: stack.primaryUrl,
        replicaDatabaseUrl: stack.standbyUrl,
        mainFor: (service) => (service === 'order' ? bad : path.join(dataDir, 'never-started.mjs')),
        catalogReplicas: 0,
        orderReplicas: 0,
      }),
      (err: Error) => {
        assert.match(err.message, /bazar stack failed to start/);
        assert.match(err.message, /order-origin-0 exited during start-up \(code 3\)/);
        assert.match(err.message, /cannot start: on purpose/);
        // The catalog origin's entry does not exist either: named, with the fix.
        assert.match(err.message, /never-started\.mjs does not exist/);
        return true;
      },
    );
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(
      existsSync(path.join(dataDir, 'unused', 'pg')),
      false,
      'DATABASE_URL given: no embedded Postgres',
    );
  });

  test('a fixed port already in use is reported up front', async () => {
    assert.ok(stack);
    const busy = stack.fronts[0]?.url;
    assert.ok(busy);
    const port = Number(new URL(busy).port);
    await assert.rejects(
      startStack({ dataDir: path.join(dataDir, 'unused'), databaseUrl: stack.primaryUrl, frontPort: port }),
      new RegExp(`port ${port} is already in use`),
    );
  });

  test('a SIGKILLed launcher leaves no process behind', async () => {
    // Services exit on IPC disconnect; Postgres is stopped by the cluster's reaper.
    const dir = path.join(dataDir, 'killed');
    const script = path.join(dataDir, 'launcher.mjs');
    const stackModule = new URL('./stack.js', import.meta.url).href;
    await fs.writeFile(
      script,
      `import { startStack } from ${JSON.stringify(stackModule)};
const s = await startStack({ dataDir: ${JSON.stringify(dir)}, logDir: ${JSON.stringify(path.join(dir, 'logs'))},
  fsync: false, catalogReplicas: 0, orderReplicas: 0 });
process.stdout.write(JSON.stringify(s.all.map((p) => p.pid())) + '\\n');
setInterval(() => {}, 1000);
`,
    );
    const launcher = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pids = await new Promise<number[]>((resolve, reject) => {
      let out = '';
      launcher.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('\n')) resolve(JSON.parse(out) as number[]);
      });
      launcher.once('exit', (code) => reject(new Error(`launcher exited early (code ${code})`)));
    });
    for (const d of Object.values(pgDataDirs(path.join(dir, 'pg')))) {
      pids.push(
        Number.parseInt(readFileSync(path.join(d, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10),
      );
    }
    assert.equal(pids.length, 5);
    assert.deepEqual(
      pids.filter((p) => !isRunning(p)),
      [],
    );
    launcher.kill('SIGKILL');
    const deadline = Date.now() + 20_000;
    while (pids.some(isRunning) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(pids.filter(isRunning), [], 'orphans after the launcher was killed');
  });

  test('stop() stops every service process and Postgres', async () => {
    assert.ok(stack);
    const pids = stack.all.map((p) => p.pid()).filter((p): p is number => p !== undefined);
    for (const d of Object.values(pgDataDirs(path.join(dataDir, 'pg')))) {
      pids.push(
        Number.parseInt(readFileSync(path.join(d, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10),
      );
    }
    assert.equal(pids.length, 8);
    const t0 = Date.now();
    await stack.stop();
    stack = undefined;
    assert.deepEqual(pids.filter(isRunning), []);
    assert.ok(Date.now() - t0 < 15_000, `stop took ${Date.now() - t0} ms`);
  });
});
