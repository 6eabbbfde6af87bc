/**
 * The real @kubernetes/client-node informer (ListWatch + SafeWatch) inside ResilientInformer, against a
 * scripted HTTP stand-in for the API server: 410 Gone relists, a failed watch is restarted with
 * backoff, a cleanly closed watch reconnects. (The API-server tier covers a real kube-apiserver.)
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

type WatchScript = 'gone' | 'error-event-gone' | 'fail' | 'close' | 'stream';

class ScriptedApi {
  slices = new Map<string, V1EndpointSlice>();
  rv = 10;
  lists = 0;
  watches: string[] = [];
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
    if (url.searchParams.get('watch') !== 'true') {
      this.lists++;
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
    } else if (step === 'close') {
      res.end();
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      this.open.add(res);
      res.on('close', () => this.open.delete(res));
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
        3,
        `three lists: the first and one per 410 (watches: ${api.watches.join(', ')})`,
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
});
