/**
 * Whether this machine can run the API-server tier: kube-apiserver and etcd (and kubectl, helm for the
 * checks that use them) built by scripts/k8s-tools.sh. Run as a script it prints the verdict and exits
 * 0 (can run) or 1 (cannot).
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/test/kubernetes/ (or test/kubernetes/). */
export const repoRoot = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  ...(import.meta.url.includes('/dist/') ? ['..'] : []),
);

export interface ToolchainStatus {
  run: boolean;
  /** Why the tier cannot run (empty when it can). */
  reason: string;
  binDir: string;
  kubectl?: string;
  helm?: string;
}

/** Same lookup as scripts/local-apiserver.mjs: BAZAR_TOOLS_BIN, else ${BAZAR_TOOLS_DIR:-~/.cache/bazar-tools}/bin. */
export function toolsBinDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BAZAR_TOOLS_BIN) return env.BAZAR_TOOLS_BIN;
  return path.join(env.BAZAR_TOOLS_DIR || path.join(os.homedir(), '.cache', 'bazar-tools'), 'bin');
}

export function kubernetesTierStatus(env: NodeJS.ProcessEnv = process.env): ToolchainStatus {
  const binDir = toolsBinDir(env);
  const missing = ['kube-apiserver', 'etcd'].filter((tool) => !existsSync(path.join(binDir, tool)));
  const optional = (tool: string) =>
    existsSync(path.join(binDir, tool)) ? path.join(binDir, tool) : undefined;
  const kubectl = optional('kubectl');
  const helm = optional('helm');
  const base = { binDir, ...(kubectl ? { kubectl } : {}), ...(helm ? { helm } : {}) };
  if (missing.length > 0) {
    return {
      ...base,
      run: false,
      reason: `${missing.join(' and ')} not found in ${binDir}; build them with scripts/k8s-tools.sh (needs Go >= 1.26, ~15 min once)`,
    };
  }
  if (!existsSync(path.join(repoRoot, 'scripts', 'local-apiserver.mjs'))) {
    return { ...base, run: false, reason: 'scripts/local-apiserver.mjs is missing' };
  }
  return { ...base, run: true, reason: '' };
}

/**
 * The skip decision for a test file: run when the toolchain is present; otherwise skip with a loud
 * reason, except under CI (or BAZAR_REQUIRE_K8S_TIER=1), where a missing toolchain is a failure.
 */
export function tierSkipReason(): string | false {
  const status = kubernetesTierStatus();
  if (status.run) return false;
  const message = `NOT RUN: the Kubernetes API-server tier: ${status.reason}`;
  if (process.env.CI || process.env.BAZAR_REQUIRE_K8S_TIER === '1') {
    throw new Error(`${message} (required here: CI or BAZAR_REQUIRE_K8S_TIER=1)`);
  }
  process.stderr.write(`\n*** ${message}\n\n`);
  return message;
}

const isMain =
  process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const status = kubernetesTierStatus();
  process.stdout.write(status.run ? `ok: tools in ${status.binDir}\n` : `not runnable: ${status.reason}\n`);
  process.exitCode = status.run ? 0 : 1;
}
