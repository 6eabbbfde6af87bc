/**
 * The real @kubernetes/client-node informer (ListWatch on a BoundedWatch) inside ResilientInformer,
 * against a scripted HTTP stand-in for the API server: 410 Gone relists, a failed watch is restarted
 * with backoff, a cleanly closed watch reconnects; and an API server that stops answering without
 * closing anything (a watch with no response, a watch that never ends, a list with no answer) costs a
 * deadline, never a silent stall. (The API-server tier covers a real kube-apiserver.)
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { KubeConfig, type V1EndpointSlice } from '@kubernetes/client-node';
import { sliceSource } from './endpoint-slice-discovery.js';
import { kubeMetrics } from './kube-metrics.js';
import { ResilientInformer } from './resilient-informer.js';
import { memoryLogger, testMetrics, until } from './test-fakes.js';

type WatchScript =
  | 'gone'
  | 'error-event-gone'
  | 'error-event-500'
  | 'fail'
  | 'close'
  | 'stream'
  /** Accept the request and never answer it (a frozen API server). */
  | 'hang'
  /** Answer 200 and then nothing, never ending it (an API server that froze, or vanished without a FIN). */
  | 'stall';

class ScriptedApi {
  slices = new Map<string, V1EndpointSlice>();
  rv = 10;
  lists = 0;
  watches: string[] = [];
  /** The query of each watch request. */
  queries: URLSearchParams[] = [];
  /** Lists get no answer while set. */
  hangLists = false;
  /** Requests the server has not finished with, whose connection the client has not closed either. */
  pending = new Set<http.ServerResponse>();
  /** What the next watch requests do; 'stream' (stay open) once the script runs out. */
  script: WatchScript[] = [];
  open = new Set<http.ServerResponse>();
  readonly server = http.createServer((req, res) => this.#handle(req, res));

  put(name: string, ip: string): void {
    const slice: V1EndpointSlice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name, namespace: 'ns', resourceVersion: String(++this.rv) },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ addresses: [ip], targetRef: { kind: 'Pod', name } }],
    };
    this.slices.set(name, slice);
    for (const res of this.open) res.write(`${JSON.stringify({ type: 'ADDED', object: slice })}\n`);
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://api');
    this.pending.add(res);
    res.on('close', () => this.pending.delete(res));
    if (url.searchParams.get('watch') !== 'true') {
      this.lists++;
      if (this.hangLists) return;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          kind: 'EndpointSliceList',
          apiVersion: 'discovery.k8s.io/v1',
          metadata: { resourceVersion: String(this.rv) },
          items: [...this.slices.values()],
        }),
      );
      return;
    }
    const step = this.script.shift() ?? 'stream';
    this.watches.push(`${step}@${url.searchParams.get('resourceVersion')}`);
    this.queries.push(url.searchParams);
    const status = (code: number, reason: string) => ({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      code,
      reason,
    });
    if (step === 'gone') {
      res.statusCode = 410;
      res.end(JSON.stringify(status(410, 'Gone')));
    } else if (step === 'fail') {
      res.statusCode = 500;
      res.end(JSON.stringify(status(500, 'InternalError')));
    } else if (step === 'error-event-gone') {
      res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired') })}\n`);
    } else if (step === 'error-event-500') {
      res.end(`${JSON.stringify({ type: 'ERROR', object: status(500, 'InternalError') })}\n`);
    } else if (step === 'close') {
      res.end();
    } else if (step === 'hang') {
      // No status, no headers, nothing: the request waits.
    } else if (step === 'stall') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      this.open.add(res);
      // Like kube-apiserver: the watch ends (cleanly) after the timeoutSeconds the client asked for.
      const seconds = Number(url.searchParams.get('timeoutSeconds'));
      const end = seconds > 0 ? setTimeout(() => res.end(), seconds * 1000) : undefined;
      res.on('close', () => {
        clearTimeout(end);
        this.open.delete(res);
      });
    }
  }
}

describe('ResilientInformer with the real client-node ListWatch', () => {
  const api = new ScriptedApi();
  let kubeConfig: KubeConfig;

  before(async () => {
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    const { port } = api.server.address() as AddressInfo;
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      // Plain HTTP is only allowed with skipTLSVerify.
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: 'ns' }],
      currentContext: 'x',
    });
  });

  after(async () => {
    for (const res of api.open) res.destroy();
    api.server.closeAllConnections();
    await new Promise((resolve) => api.server.close(resolve));
  });

  function start() {
    const { logger, records } = memoryLogger();
    const metrics = testMetrics();
    const informer = new ResilientInformer<V1EndpointSlice>({
      watchName: 'endpointslices/bazar-catalog',
      ...sliceSource({ kubeConfig, namespace: 'ns', source: 'kubeconfig' }, 'bazar-catalog'),
      logger,
      metrics: kubeMetrics(metrics),
      backoffInitialMs: 10,
      backoffMaxMs: 50,
      idleRestartMs: 60_000,
      syncGraceMs: 60_000,
      // Each watch asks to end after 1 s; no response in 150 ms, or still open at 1.15 s: dead.
      bounds: { timeoutSeconds: 1, responseTimeoutMs: 150, listTimeoutMs: 200, stallMs: 5_000 },
    });
    informer.start();
    return { informer, records, metrics };
  }

  test('410 Gone on the watch, or as an ERROR event, relists; a failed watch restarts; a closed one reconnects', async () => {
    api.put('a', '10.0.0.1');
    api.script = ['gone', 'error-event-gone', 'fail', 'close'];
    const { informer, metrics, records } = start();
    try {
      assert.equal(await informer.waitForSync(5000), true, `not synced: ${String(records.at(-1)?.error)}`);
      // gone → relist; error event 410 + close → relist; fail (500) → our restart; close → reconnect.
      await until(() => api.watches.length >= 5 && api.open.size === 1, 5000, 'the watch to settle');
      assert.equal(
        api.lists,
        4,
        `four lists: the first, one per 410, one after the 500 (a refused watch starts over from a list) (watches: ${api.watches.join(', ')})`,
      );
      assert.match(
        await metrics.registry.metrics(),
        /bazar_kubernetes_watch_restarts_total\{watch="endpointslices\/bazar-catalog",reason="error"[^}]*\} 1/,
      );
      assert.ok(records.some((r) => r.msg.startsWith('Kubernetes watch failed')));
      api.put('b', '10.0.0.2');
      await until(() => informer.objects().length === 2, 2000, 'an event through the resumed watch');
      assert.equal(informer.synced(), true);
    } finally {
      await informer.close();
    }
  });

  test('every watch asks the server to end it and to send bookmarks', async () => {
    api.script = [];
    api.queries = [];
    const { informer } = start();
    try {
      assert.equal(await informer.waitForSync(5000), true);
      await until(() => api.queries.length >= 1, 2000, 'a watch');
      const query = api.queries[0];
      assert.equal(query?.get('timeoutSeconds'), '1');
      assert.equal(query?.get('allowWatchBookmarks'), 'true');
      assert.equal(query?.get('labelSelector'), 'kubernetes.io/service-name=bazar-catalog');
    } finally {
      await informer.close();
    }
  });

  test('a quiet watch the server ends after timeoutSeconds is resumed: no relist, no restart, never idle for long', async () => {
    api.script = [];
    api.watches = [];
    const { informer, metrics } = start();
    try {
      assert.equal(await informer.waitForSync(5000), true);
      const lists = api.lists;
      await until(() => api.watches.length >= 3, 5000, 'two watches ended by the server, and resumed');
      assert.equal(api.lists, lists, 'resumed from the resourceVersion, without a relist');
      const text = await metrics.registry.metrics();
      assert.doesNotMatch(text, /bazar_kubernetes_watch_restarts_total\{/, 'no restart');
      const silence = /bazar_kubernetes_watch_silence_seconds\{[^}]*\} ([\d.]+)/.exec(text);
      assert.ok(
        silence && Number(silence[1]) < 1.2,
        `heard from the server within a watch timeout (${silence?.[1]} s)`,
      );
    } finally {
      await informer.close();
    }
  });

  test('a watch request with no response and a watch that never ends both fail at their deadline, and the informer recovers', async () => {
    api.watches = [];
    api.script = ['hang', 'stall'];
    const { informer, metrics } = start();
    try {
      assert.equal(await informer.waitForSync(5000), true);
      // hang: no response within 150 ms; stall: 200 and then silence, still open 1.15 s after it began.
      await until(() => api.watches.length >= 3 && api.open.size === 1, 5000, 'a working watch');
      const text = await metrics.registry.metrics();
      assert.match(text, /bazar_kubernetes_watch_restarts_total\{[^}]*reason="timeout"[^}]*\} 2\n/);
      api.put('c', '10.0.0.3');
      await until(() => informer.objects().some((s) => s.metadata?.name === 'c'), 2000, 'an event');
      // The dead requests were closed by the client: nothing left pending on the server but the watch.
      await until(() => api.pending.size === 1, 2000, 'the abandoned requests closed');
    } finally {
      await informer.close();
    }
  });

  test('an ERROR event other than 410 ends the watch as a failure, with backoff (no reconnect loop)', async () => {
    api.watches = [];
    api.script = ['error-event-500'];
    const { informer, metrics, records } = start();
    try {
      assert.equal(await informer.waitForSync(5000), true);
      await until(() => api.open.size === 1, 2000, 'a working watch');
      assert.equal(api.watches.length, 2, `one failed watch, one working (${api.watches.join(', ')})`);
      assert.match(await metrics.registry.metrics(), /reason="error"[^}]*\} 1\n/);
      assert.ok(records.some((r) => r.status === 500));
    } finally {
      await informer.close();
    }
  });

  test('a list with no answer is aborted at its deadline; close() leaves no request behind', async () => {
    api.script = ['hang'];
    api.hangLists = true;
    api.lists = 0;
    const { informer, metrics } = start();
    try {
      await until(() => api.lists >= 3, 3000, 'lists retried after their deadline');
      assert.equal(api.pending.size, 1, 'each list that timed out was aborted: one pending at a time');
      assert.match(await metrics.registry.metrics(), /reason="timeout"/);
      api.hangLists = false;
      assert.equal(await informer.waitForSync(3000), true);
      // The scripted watch gets no response; close() must not wait for it nor leave it open.
      await until(() => api.pending.size === 1 && api.script.length === 0, 2000, 'the hanging watch');
    } finally {
      await informer.close();
    }
    await until(() => api.pending.size === 0, 2000, 'no request left open after close()');
  });
});
