/**
 * A real Prometheus (Debian's, or any on PATH) scraping the processes of a store started with
 * tools/devstack, each target labelled as the chart's ServiceMonitor labels the pods (job = the
 * component, namespace, pod): what `npm run dashboard-shot` and test/prometheus draw and alert from.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../../bench/src/processes.js';
import type { Stack } from '../../devstack/src/stack.js';

export interface StorePrometheus {
  /** Its HTTP API, http://127.0.0.1:<port>. */
  api: string;
  proc: ChildProcess;
}

/** Starts it (its config and data in `dir`) and resolves once it answers /-/ready. */
export async function startStorePrometheus(opts: {
  bin: string;
  dir: string;
  stack: Stack;
  namespace: string;
  /** Scrape and rule-evaluation interval, e.g. '1s'. */
  interval: string;
  ruleFiles?: string[];
}): Promise<StorePrometheus> {
  const config = path.join(opts.dir, 'prometheus.yaml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: opts.interval, evaluation_interval: opts.interval },
      ...(opts.ruleFiles ? { rule_files: opts.ruleFiles } : {}),
      scrape_configs: [
        {
          job_name: 'bazar',
          static_configs: opts.stack.all.map((p) => ({
            targets: [new URL(p.url).host],
            labels: { job: p.service, namespace: opts.namespace, pod: p.name },
          })),
        },
      ],
    }),
  );
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const proc = spawn(
    opts.bin,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(opts.dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; ; i++) {
    if (
      await fetch(`${api}/-/ready`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { api, proc };
    if (i > 300) {
      proc.kill('SIGKILL');
      throw new Error('Prometheus did not get ready in 30 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
