/**
 * A stream of reads through a Service, from a pod inside the cluster, as another workload of the
 * cluster would see the store (a port-forward is bound to one pod and dies with it; the Service is
 * what survives pod changes). The pod runs the curl image the chart's `helm test` uses, requests one
 * path after another on a new connection each, logs one line per answer, and stops when told.
 */
import type { Kube } from './support.js';
import { until } from './support.js';

export interface ReadLoopReport {
  requests: number;
  failures: Array<{ path: string; answer: string }>;
  /** X-Served-By of the answers, counted. */
  servedBy: Record<string, number>;
  /** X-Front of the answers, counted. */
  fronts: Record<string, number>;
  durationMs: number;
}

// Kubernetes expands $(NAME) and $$ in a command: the script uses ${NAME} and backquotes only.
const SCRIPT = `
while [ ! -e /tmp/stop ]; do
  for p in \${READ_PATHS}; do
    case "\${p}" in /info/*) h='Cache-Control: no-cache' ;; *) h='X-Reader: cluster-tier' ;; esac
    a=\`curl -s -o /dev/null --max-time 5 -H "\${h}" -w '%{http_code} %header{x-served-by} %header{x-front}' "\${READ_URL}\${p}"\`
    echo "R \${p} \${a}"
    [ -e /tmp/stop ] && break
  done
done
echo DONE
`;

const POD = 'bazar-tier-reader';

export class ReadLoop {
  #started = Date.now();

  private constructor(
    private readonly kube: Kube,
    private readonly ns: string,
  ) {}

  /** Starts the reader pod on `image` against `url` (e.g. http://bazar-front:80) and waits for its first answers. */
  static async start(kube: Kube, ns: string, image: string, url: string, paths: string[]): Promise<ReadLoop> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: POD, namespace: ns, labels: { app: POD } },
      spec: {
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 1,
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'reader',
            image,
            imagePullPolicy: 'IfNotPresent',
            command: ['/bin/sh', '-c', SCRIPT],
            env: [
              { name: 'READ_URL', value: url },
              { name: 'READ_PATHS', value: paths.join(' ') },
            ],
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 100,
              runAsGroup: 101,
              allowPrivilegeEscalation: false,
              capabilities: { drop: ['ALL'] },
            },
          },
        ],
      },
    };
    await kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    const loop = new ReadLoop(kube, ns);
    await until(
      'the reader pod to answer',
      async () => ((await loop.lines()).length >= paths.length ? true : undefined),
      60_000,
    );
    loop.#started = Date.now();
    return loop;
  }

  private async lines(): Promise<string[]> {
    const out = await this.kube.kubectl(['logs', '-n', this.ns, POD], { allowFailure: true });
    return out.stdout.split('\n').filter((l) => l.startsWith('R '));
  }

  async stop(): Promise<ReadLoopReport> {
    const durationMs = Date.now() - this.#started;
    await this.kube.kubectl(['exec', '-n', this.ns, POD, '--', 'touch', '/tmp/stop']);
    await until(
      'the reader pod to finish',
      async () => {
        const out = await this.kube.kubectl(['logs', '-n', this.ns, POD]);
        return /^DONE$/m.test(out.stdout) ? true : undefined;
      },
      30_000,
    );
    const lines = await this.lines();
    await this.kube.kubectl(['delete', 'pod', '-n', this.ns, POD, '--wait=false']);
    const report: ReadLoopReport = { requests: 0, failures: [], servedBy: {}, fronts: {}, durationMs };
    const count = (map: Record<string, number>, key: string | undefined) => {
      if (key) map[key] = (map[key] ?? 0) + 1;
    };
    for (const line of lines) {
      const [, path = '', status = '', servedBy, front] = line.split(' ');
      report.requests++;
      count(report.servedBy, servedBy);
      count(report.fronts, front);
      if (status !== '200') report.failures.push({ path, answer: line.slice(2 + path.length + 1) });
    }
    return report;
  }
}
