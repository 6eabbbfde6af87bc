/**
 * Runs a k6 script through the k6 stand-in inside the node's network namespace (started with
 * `cluster.exec`, as a k6 running in the cluster would be), so its requests reach a Service's
 * ClusterIP with no tunnel in between: `node k6-in-node.js <config.json>`. Writes what the test
 * judges (thresholds, failures, the iteration's request count, the summary) to the config's `out`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { runK6Script } from '../../tools/k6-standin/src/runner.js';

export interface K6InNodeConfig {
  script: string;
  env: Record<string, string>;
  cwd: string;
  out: string;
}

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as K6InNodeConfig;
const r = await runK6Script({ script: config.script, action: 'run', env: config.env, cwd: config.cwd });
writeFileSync(
  config.out,
  JSON.stringify({
    thresholds: r.thresholds,
    failures: r.failures,
    iterationRequests: r.requests.filter((q) => q.phase === 'iteration').length,
    summary: r.summaryOutputs?.stdout ?? '',
  }),
);
