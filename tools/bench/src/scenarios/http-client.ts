/**
 * What `got` itself costs per call, against `node:http`: serial keep-alive requests on loopback from
 * the bench process to the bare node:http server (another process), once with a node:http client on a
 * keep-alive agent and once with got as the services use it (`createHttpClient` + `send` from
 * services/shared/src/http-client.ts), rounds alternating. CPU is the calling process's own
 * (process.cpuUsage), so the server's share is not in it; wall time is per call, end to end.
 */
import http from 'node:http';
import { createHttpClient, send } from '../../../../services/shared/src/http-client.js';
import { processCpuMs } from '../cpu.js';
import { startBaseline } from '../processes.js';
import type { BenchRun } from '../run.js';
import { Samples } from '../stats.js';

export interface ClientCost {
  client: string;
  request: string;
  calls: number;
  /** Milliseconds per call, end to end. */
  latencies: Samples;
  wallUsPerCall: number;
  /** The caller's CPU per call (user + system). */
  cpuUsPerCall: number;
  /** The server's CPU per call, for reference (the same server for both clients). */
  serverCpuUsPerCall: number | undefined;
}

type Call = () => Promise<void>;

function nodeHttpCall(url: string, agent: http.Agent, method: 'GET' | 'POST', body?: string): Call {
  const headers: Record<string, string> = body
    ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }
    : {};
  return () =>
    new Promise((resolve, reject) => {
      const req = http.request(url, { method, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          Buffer.concat(chunks);
          resolve();
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
}

async function measure(calls: number, call: Call, serverPid: number | undefined) {
  const latencies = new Samples();
  const server0 = processCpuMs(serverPid);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    const began = process.hrtime.bigint();
    await call();
    latencies.push(Number(process.hrtime.bigint() - began) / 1e6);
  }
  const wallUs = Number(process.hrtime.bigint() - t0) / 1e3;
  const cpu = process.cpuUsage(cpu0);
  const server1 = processCpuMs(serverPid);
  return {
    latencies,
    wallUs,
    cpuUs: cpu.user + cpu.system,
    serverUs: server0 !== undefined && server1 !== undefined ? (server1 - server0) * 1000 : undefined,
  };
}

export async function httpClientCost(run: BenchRun): Promise<ClientCost[]> {
  const server = await startBaseline('{"id":1,"title":"How to get a good grade in DOS in 40 minutes a day"}');
  const stopServer = run.onExit(() => server.stop());
  const agent = new http.Agent({
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets: 256,
    maxFreeSockets: 64,
  });
  const got = createHttpClient({ timeoutMs: 5000 });
  const url = `${server.url}/books/1`;
  const body = JSON.stringify({ items: [{ bookId: 1, version: 42 }], origin: 'bench' });
  const headers = { authorization: 'Bearer bench' };
  const clients: Array<{ client: string; request: string; call: Call }> = [
    { client: 'node:http', request: 'GET', call: nodeHttpCall(url, agent, 'GET') },
    {
      client: 'got (createHttpClient + send)',
      request: 'GET',
      call: async () => void (await send(got, url, { method: 'GET' })),
    },
    { client: 'node:http', request: 'POST, JSON body', call: nodeHttpCall(url, agent, 'POST', body) },
    {
      client: 'got (createHttpClient + send)',
      request: 'POST, JSON body',
      call: async () => void (await send(got, url, { method: 'POST', headers, body })),
    },
  ];
  try {
    const { clientCalls, clientRounds } = run.durations;
    for (const c of clients) await measure(Math.min(200, clientCalls), c.call, undefined); // warm: JIT, sockets
    const totals = clients.map(() => ({
      latencies: new Samples(),
      wallUs: 0,
      cpuUs: 0,
      serverUs: 0 as number | undefined,
    }));
    for (let r = 0; r < clientRounds; r++) {
      for (const [i, c] of clients.entries()) {
        run.checkpoint();
        const m = await measure(clientCalls, c.call, server.pid);
        const t = totals[i]!;
        for (const v of m.latencies.values()) t.latencies.push(v);
        t.wallUs += m.wallUs;
        t.cpuUs += m.cpuUs;
        t.serverUs =
          t.serverUs === undefined || m.serverUs === undefined ? undefined : t.serverUs + m.serverUs;
      }
    }
    const calls = clientCalls * clientRounds;
    const out = clients.map((c, i): ClientCost => ({
      client: c.client,
      request: c.request,
      calls,
      latencies: totals[i]!.latencies,
      wallUsPerCall: totals[i]!.wallUs / calls,
      cpuUsPerCall: totals[i]!.cpuUs / calls,
      serverCpuUsPerCall: totals[i]!.serverUs === undefined ? undefined : totals[i]!.serverUs! / calls,
    }));
    run.log(
      `HTTP client per call (GET): ${out
        .map((c) => `${c.client} ${c.wallUsPerCall.toFixed(0)} µs wall, ${c.cpuUsPerCall.toFixed(0)} µs CPU`)
        .slice(0, 2)
        .join('; ')}`,
    );
    return out;
  } finally {
    agent.destroy();
    const agents = got.defaults.options.agent as { http?: http.Agent };
    agents.http?.destroy();
    await stopServer();
  }
}
