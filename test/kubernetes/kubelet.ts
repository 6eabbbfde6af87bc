/**
 * The kubelet's (and the EndpointSlice controller's) part, played by the test: real service processes
 * ("pods"), and the Services and EndpointSlices that publish them. No controller-manager runs, so
 * nothing else writes EndpointSlices.
 *
 * Addresses: the API server refuses loopback endpoint addresses (127.0.0.0/8 and ::1 fail
 * validation: "may not be in the loopback range"), so pods cannot be published on 127.0.0.x. The test
 * runner (scripts/run-tests.mjs) therefore runs the suite inside a network namespace of its own, with
 * a veth pair whose address it passes as BAZAR_POD_ADDRESS: a test host that exists only inside that
 * namespace, so no test traffic ever leaves it. Every pod listens on that address, each on its own
 * port, and each gets its own EndpointSlice: exactly what the EndpointSlice controller writes when a
 * Service's named target port resolves to a different port number per pod.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { ControlPlane } from './control-plane.js';
import { repoRoot } from './toolchain.js';
import { SERVICE_NODE_FLAGS } from '../../services/shared/src/node-flags.js';

export type App = 'front' | 'catalog' | 'order';
export type EndpointState = 'ready' | 'unready' | 'terminating';

export class Pod {
  readonly url: string;
  #exit: Promise<number | null>;
  exitCode: number | null | undefined;

  constructor(
    readonly name: string,
    readonly app: App,
    readonly ip: string,
    readonly port: number,
    readonly logFile: string,
    readonly child: ChildProcess,
  ) {
    this.url = `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
    this.#exit = new Promise((resolve) => {
      child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!this.alive) throw new Error(`${this.name} exited (${this.exitCode}):\n${this.logTail()}`);
      try {
        const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
        last = await res.text();
        if (res.status === 200) return;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms (${last}):\n${this.logTail()}`);
  }

  /** Graceful stop: closing the IPC channel is what the services treat as "parent gone". */
  async stop(): Promise<void> {
    if (!this.alive) return;
    if (this.child.connected) this.child.disconnect();
    else this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.#exit;
    clearTimeout(killer);
  }

  logTail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** The environment a pod gets from its Deployment (plus what a pod would never have removed). */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    // Not in a pod here: never pick up a real cluster, a proxy, or the test runner's own settings.
    if (/^(KUBERNETES_|HTTPS?_PROXY$|https?_proxy$|NODE_TEST|NODE_OPTIONS$)/.test(key)) delete env[key];
  }
  return { ...env, NO_PROXY: '127.0.0.0/8,localhost', no_proxy: '127.0.0.0/8,localhost', ...extra };
}

export class Kubelet {
  readonly pods = new Map<string, Pod>();

  constructor(
    private readonly cp: ControlPlane,
    readonly namespace: string,
    /** The address every pod listens on (see the file comment). */
    readonly podIp: string,
    private readonly logDir: string,
  ) {}

  /** Starts a service process as pod `name`, on its own port. */
  async run(name: string, app: App, env: Record<string, string>): Promise<Pod> {
    const port = await freePort(this.podIp);
    const logFile = path.join(this.logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const main = path.join(repoRoot, 'dist', 'services', app, 'src', 'main.js');
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, main], {
      cwd: repoRoot,
      env: childEnv({ ...env, SERVICE_NAME: name, HOST: this.podIp, PORT: String(port) }),
      // The IPC slot ties the child's life to this test process.
      stdio: ['ignore', fd, fd, 'ipc'],
    });
    closeSync(fd);
    child.on('error', () => undefined); // Reported through the exit code and the log.
    const pod = new Pod(name, app, this.podIp, port, logFile, child);
    this.pods.set(name, pod);
    return pod;
  }

  pod(name: string): Pod {
    const pod = this.pods.get(name);
    if (!pod) throw new Error(`no pod ${name}`);
    return pod;
  }

  async createService(name: string): Promise<void> {
    await this.cp.core.createNamespacedService({
      namespace: this.namespace,
      body: {
        metadata: { name },
        spec: {
          ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
          selector: { service: name },
        },
      },
    });
  }

  /**
   * Reconciles a Service's EndpointSlices to `endpoints`, as the EndpointSlice controller would: one
   * slice per distinct port (here: per pod), created, replaced or deleted as needed.
   */
  async setEndpoints(
    service: string,
    endpoints: Array<[podName: string, state?: EndpointState]>,
  ): Promise<void> {
    const desired = new Map(
      endpoints.map(([name, state]) => [
        `${service}-${name}`,
        this.slice(service, this.pod(name), state ?? 'ready'),
      ]),
    );
    const existing = await this.cp.slices.listNamespacedEndpointSlice({
      namespace: this.namespace,
      labelSelector: `kubernetes.io/service-name=${service}`,
    });
    for (const slice of existing.items) {
      const name = slice.metadata?.name ?? '';
      const want = desired.get(name);
      if (!want) {
        await this.cp.slices.deleteNamespacedEndpointSlice({ name, namespace: this.namespace });
        continue;
      }
      want.metadata = { ...want.metadata, resourceVersion: slice.metadata?.resourceVersion };
      await this.cp.slices.replaceNamespacedEndpointSlice({ name, namespace: this.namespace, body: want });
      desired.delete(name);
    }
    for (const body of desired.values())
      await this.cp.slices.createNamespacedEndpointSlice({ namespace: this.namespace, body });
  }

  private slice(service: string, pod: Pod, state: EndpointState): V1EndpointSlice {
    return {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${service}-${pod.name}`,
        namespace: this.namespace,
        labels: {
          'kubernetes.io/service-name': service,
          'endpointslice.kubernetes.io/managed-by': 'bazar-test-kubelet',
        },
      },
      addressType: pod.ip.includes(':') ? 'IPv6' : 'IPv4',
      ports: [{ name: 'http', port: pod.port, protocol: 'TCP' }],
      endpoints: [
        {
          addresses: [pod.ip],
          conditions: {
            ready: state === 'ready',
            serving: state !== 'unready',
            terminating: state === 'terminating',
          },
          targetRef: { kind: 'Pod', name: pod.name, namespace: this.namespace },
          nodeName: 'bazar-test-node',
        },
      ],
    };
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.pods.values()].map((p) => p.stop()));
  }

  logs(names?: string[]): string {
    return [...this.pods.values()]
      .filter((p) => !names || names.includes(p.name))
      .map((p) => `----- ${p.name} (${p.logFile}) -----\n${p.logTail(25)}`)
      .join('\n');
  }
}

/** The pods' address inside the test network namespace (see the file comment); never this machine's own. */
export function podAddress(): string | undefined {
  return process.env.BAZAR_POD_ADDRESS || undefined;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
