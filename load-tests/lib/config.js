/* global __ENV */
// Settings for the Bazar k6 scripts, all from the environment (`k6 run -e NAME=value ...`).
// Every knob has a default that suits `npm start` on a laptop; see load-tests/README.md.

/** Base URL of a front: `npm start` listens on 8080; `kubectl port-forward svc/bazar-front 8080:80` too. */
export const BASE_URL = String(__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');

/** The store's admin token (`npm start` prints it); needed by the scenarios that restock. */
export const ADMIN_TOKEN = String(__ENV.ADMIN_TOKEN || '');

/** The store's consistency mode; `eventual` drops the read-your-writes SLO (it promises none). */
export const CONSISTENCY = String(__ENV.CONSISTENCY || 'strict');

/** Where handleSummary writes `bazar-<scenarios>-summary.{json,txt}` (default: the current directory). */
export const SUMMARY_DIR = String(__ENV.SUMMARY_DIR || '.').replace(/\/+$/, '');

/** The book every VU of the purchase storm buys. */
export const HOT_BOOK = int('HOT_BOOK', 1);

export const SCENARIO_NAMES = ['smoke', 'browse', 'purchase-storm', 'mixed', 'soak'];

/** `SCENARIO=browse`, `SCENARIO=smoke,mixed` or `SCENARIO=all`; default smoke. */
export function selectedScenarios() {
  const raw = String(__ENV.SCENARIO || 'smoke').trim();
  if (raw === 'all') return SCENARIO_NAMES.slice();
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const name of names) {
    if (SCENARIO_NAMES.indexOf(name) < 0) {
      throw new Error(`unknown SCENARIO "${name}"; choose from ${SCENARIO_NAMES.join(', ')} or all`);
    }
  }
  if (names.length === 0) throw new Error('SCENARIO is empty');
  return names;
}

export function int(name, dflt) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${raw}"`);
  return n;
}

export function num(name, dflt) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

export function duration(name, dflt) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(raw)) {
    throw new Error(`${name} must be a k6 duration such as 30s, 2m or 1h30m, got "${raw}"`);
  }
  return raw;
}
