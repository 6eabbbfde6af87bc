/**
 * A real Prometheus inside the tier's node, as a user without the Prometheus Operator runs one (built
 * from the Go module proxy by scripts/prometheus.sh: Debian's has no Kubernetes service discovery):
 * Kubernetes service discovery of the release's pods through the API
 * server (the node's kubeconfig), the labels the chart's ServiceMonitor gives its targets (job = the
 * component, namespace, pod), and the chart's own alert rules, rendered from the chart
 * (`prometheusRule.enabled=true`) for this release and namespace. The scenarios ask it which alerts
 * fire while a fault lasts and that they resolve after it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { Cluster } from '../../tools/cluster/src/index.js';
import type { RunResult } from '../../tools/cluster/src/exec.js';
import { findTool, renderedRuleGroups, ROOT } from '../chart/tools.js';
import { log, sleep } from './support.js';
import { activeAlerts, isActive, isFiring, untilAlerts, type ActiveAlert } from '../prometheus/alerts.js';

/** The binary scripts/prometheus.sh builds, if it is there. */
function prometheusBinary(): string | undefined {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'prometheus.sh'), '--print-bin'], {
    encoding: 'utf8',
  });
  const bin = r.stdout.trim();
  return r.status === 0 && bin !== '' && existsSync(bin) ? bin : undefined;
}

/** Why the tier cannot run its alert checks here (prometheus or helm missing), or undefined. */
export function nodePrometheusBlocker(): string | undefined {
  if (!prometheusBinary()) {
    return 'a Prometheus with Kubernetes discovery is needed (bash scripts/test-tools.sh builds it)';
  }
  if (!findTool('helm')) return 'helm is needed (scripts/k8s-tools.sh builds it)';
  return undefined;
}

/** Its listen address inside the node's network namespace (the node is the tier's own). */
const LISTEN = '127.0.0.1:19090';

export class NodePrometheus {
  readonly #done: Promise<RunResult>;
  /** Every alert seen firing since it started (by name and labels), with when it was first seen. */
  readonly #everFiring = new Map<string, { alert: ActiveAlert; at: number }>();
  #watching = false;

  private constructor(
    private readonly cluster: Cluster,
    private readonly dir: string,
    done: Promise<RunResult>,
  ) {
    this.#done = done;
  }

  static async start(opts: {
    cluster: Cluster;
    work: string;
    namespace: string;
    release: string;
    /** Chart values (`--set`) for the rules, e.g. an alert's `for`. */
    set?: string[];
  }): Promise<NodePrometheus> {
    const dir = path.join(opts.work, 'prometheus');
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    const groups = renderedRuleGroups(findTool('helm')!, {
      release: opts.release,
      namespace: opts.namespace,
      set: opts.set,
    });
    writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups }));
    writeFileSync(
      path.join(dir, 'prometheus.yaml'),
      stringify({
        global: { scrape_interval: '2s', evaluation_interval: '2s' },
        rule_files: [path.join(dir, 'rules.yaml')],
        scrape_configs: documentedScrapeConfigs({
          namespace: opts.namespace,
          release: opts.release,
          kubeconfig: opts.cluster.kubeconfigNodePath,
        }),
      }),
    );
    const prometheus = prometheusBinary();
    if (!prometheus) throw new Error(nodePrometheusBlocker());
    const done = opts.cluster.exec(
      [
        prometheus,
        `--config.file=${path.join(dir, 'prometheus.yaml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=${LISTEN}`,
        '--web.enable-lifecycle',
        '--log.level=warn',
      ],
      { timeoutMs: 3_600_000, allowFailure: true },
    );
    const p = new NodePrometheus(opts.cluster, dir, done);
    // Up once it answers, and once it scrapes every service pod of the release.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const up = await p.#get('/api/v1/query?query=up').catch(() => undefined);
      const targets = (up as { data?: { result?: unknown[] } } | undefined)?.data?.result?.length ?? 0;
      if (targets > 0) {
        log(`prometheus in the node at ${LISTEN}: scraping ${targets} service pods of ${opts.release}`);
        p.#watch();
        return p;
      }
      if (Date.now() > deadline) {
        const targets = await p.#get('/api/v1/targets?state=any').catch((err: Error) => err.message);
        const output = await p.stop();
        throw new Error(
          `prometheus in the node: no target scraped within 60 s (its files: ${dir}); ` +
            `its targets: ${JSON.stringify(targets).slice(0, 3000)}; its output: ${output.slice(-3000)}`,
        );
      }
      await sleep(1000);
    }
  }

  /** One GET of its HTTP API, from inside the node (where it listens). */
  async #get(pathAndQuery: string): Promise<unknown> {
    const script =
      `fetch(${JSON.stringify(`http://${LISTEN}${pathAndQuery}`)}, { signal: AbortSignal.timeout(5000) })` +
      '.then((r) => r.text()).then((t) => process.stdout.write(t))';
    const r = await this.cluster.exec([process.execPath, '-e', script], { timeoutMs: 15_000 });
    return JSON.parse(r.stdout) as unknown;
  }

  /** Polls the alerts every 5 s in the background, remembering every one seen firing. */
  #watch(): void {
    this.#watching = true;
    void (async () => {
      while (this.#watching) {
        await this.alerts().catch(() => []);
        await sleep(5000);
      }
    })();
  }

  /** Every alert seen firing since it started (each name and label set once, first sighting). */
  everFiring(): Array<{ alert: ActiveAlert; at: number }> {
    return [...this.#everFiring.values()];
  }

  /** The alerts pending or firing now (every one seen firing is remembered). */
  async alerts(): Promise<ActiveAlert[]> {
    const alerts = activeAlerts(await this.#get('/api/v1/alerts'));
    for (const a of alerts) {
      const key = JSON.stringify(a.labels);
      if (a.state === 'firing' && !this.#everFiring.has(key))
        this.#everFiring.set(key, { alert: a, at: Date.now() });
    }
    return alerts;
  }

  /** Waits until every alert of `names` fires; resolves with the time each was first seen firing. */
  async untilFiring(names: string[], timeoutMs: number): Promise<Map<string, number>> {
    const firingAt = new Map<string, number>();
    const read = async () => {
      const now = await this.alerts();
      for (const n of names) if (!firingAt.has(n) && isFiring(now, n)) firingAt.set(n, Date.now());
      return now;
    };
    await untilAlerts(
      read,
      `${names.join(' and ')} firing`,
      () => names.every((n) => firingAt.has(n)),
      timeoutMs,
    );
    return firingAt;
  }

  /** Waits until `name` fires with each of `values` as its `label` (one alert per pod, say); resolves with the alerts then. */
  async untilFiringFor(
    name: string,
    label: string,
    values: string[],
    timeoutMs: number,
  ): Promise<ActiveAlert[]> {
    const firingWith = (now: ActiveAlert[]) =>
      new Set(now.filter((a) => a.name === name && a.state === 'firing').map((a) => a.labels[label]));
    return untilAlerts(
      () => this.alerts(),
      `${name} firing for ${label} ${values.join(', ')}`,
      (now) => values.every((v) => firingWith(now).has(v)),
      timeoutMs,
    );
  }

  /** Waits until none of `names` is pending or firing. */
  async untilResolved(names: string[], timeoutMs: number): Promise<void> {
    await untilAlerts(
      () => this.alerts(),
      `${names.join(' and ')} resolved`,
      (now) => !names.some((n) => isActive(now, n)),
      timeoutMs,
    );
  }

  /** Stops it (the lifecycle endpoint; killed with the node's namespaces otherwise), waits, and resolves with its output. */
  async stop(): Promise<string> {
    this.#watching = false;
    const script = `fetch(${JSON.stringify(`http://${LISTEN}/-/quit`)}, { method: 'POST' }).catch(() => {})`;
    await this.cluster.exec([process.execPath, '-e', script], { timeoutMs: 15_000, allowFailure: true });
    const result = await Promise.race([this.#done, sleep(20_000).then(() => undefined)]);
    log(`prometheus in the node stopped (its files: ${this.dir})`);
    return result === undefined ? '(still running 20 s after /-/quit)' : `${result.stdout}${result.stderr}`;
  }
}

interface ScrapeConfig {
  kubernetes_sd_configs?: Array<{ kubeconfig_file?: string; namespaces?: { names: string[] } }>;
  relabel_configs?: Array<{ source_labels?: string[]; regex?: string }>;
}

/**
 * The scrape config docs/operations.md gives a user without the Prometheus Operator ("Without the
 * Prometheus Operator"), for this release and namespace, reaching the API server with the node's
 * kubeconfig: the tier runs what the page says, so the page cannot drift from what works.
 */
export function documentedScrapeConfigs(opts: {
  namespace: string;
  release: string;
  kubeconfig: string;
}): ScrapeConfig[] {
  const page = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8');
  const section = page.slice(page.indexOf('### Without the Prometheus Operator'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('docs/operations.md: no yaml block under "Without the Prometheus Operator"');
  const configs = (parse(block) as { scrape_configs: ScrapeConfig[] }).scrape_configs;
  const instance = '__meta_kubernetes_pod_label_app_kubernetes_io_instance';
  for (const config of configs) {
    for (const sd of config.kubernetes_sd_configs ?? []) {
      sd.kubeconfig_file = opts.kubeconfig;
      sd.namespaces = { names: [opts.namespace] };
    }
    for (const rule of config.relabel_configs ?? []) {
      if (rule.source_labels?.includes(instance)) rule.regex = opts.release;
    }
  }
  return configs;
}
