// A plain-text end-of-test summary from k6's summary data (the object handleSummary receives), with
// each threshold's verdict, so no remote jslib import is needed.

function fmtValue(metric, key, value) {
  if (typeof value !== 'number') return String(value);
  if (metric.type === 'rate') return key === 'rate' ? `${(value * 100).toFixed(2)}%` : String(value);
  if (metric.type === 'trend' && metric.contains === 'time') return fmtMs(value);
  if (metric.contains === 'data')
    return key === 'rate' ? `${(value / 1024).toFixed(1)} kB/s` : `${(value / 1024).toFixed(1)} kB`;
  if (metric.type === 'counter' && key === 'rate') return `${value.toFixed(2)}/s`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function fmtMs(ms) {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms >= 1) return `${ms.toFixed(2)}ms`;
  return `${(ms * 1000).toFixed(0)}µs`;
}

function pad(s, n) {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function collectChecks(group, out) {
  for (const c of group.checks || []) out.push({ path: group.path, check: c });
  for (const g of group.groups || []) collectChecks(g, out);
  return out;
}

/** The text summary: checks, then every metric with its thresholds (✓ met, ✗ breached). */
export function textSummary(data, title) {
  const lines = [];
  lines.push(title || 'Bazar k6 summary');
  lines.push('');
  const checks = collectChecks(data.root_group || { checks: [], groups: [] }, []);
  if (checks.length > 0) {
    lines.push('checks');
    for (const { path, check } of checks) {
      const mark = check.fails === 0 ? '✓' : '✗';
      const where = path ? `${path.replace(/^::/, '')} › ` : '';
      lines.push(`  ${mark} ${where}${check.name}  (${check.passes} passed, ${check.fails} failed)`);
    }
    lines.push('');
  }
  const names = Object.keys(data.metrics || {}).sort();
  const width = names.reduce((w, n) => Math.max(w, n.length), 0) + 2;
  let breached = 0;
  for (const name of names) {
    const metric = data.metrics[name];
    const values = Object.keys(metric.values || {})
      .map((k) => `${k}=${fmtValue(metric, k, metric.values[k])}`)
      .join(' ');
    const thresholds = metric.thresholds || {};
    const verdicts = Object.keys(thresholds);
    const failed = verdicts.some((t) => !thresholds[t].ok);
    const mark = verdicts.length === 0 ? ' ' : failed ? '✗' : '✓';
    lines.push(`${mark} ${pad(name, width)}${values}`);
    for (const t of verdicts) {
      if (!thresholds[t].ok) breached++;
      lines.push(`    ${thresholds[t].ok ? '✓' : '✗'} ${t}`);
    }
  }
  lines.push('');
  lines.push(breached === 0 ? 'All thresholds met.' : `${breached} threshold(s) breached.`);
  if (data.state && typeof data.state.testRunDurationMs === 'number') {
    lines.push(`Test run: ${(data.state.testRunDurationMs / 1000).toFixed(1)} s`);
  }
  return lines.join('\n') + '\n';
}
