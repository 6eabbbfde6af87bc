/**
 * What the tests ask a real Prometheus about its alerts (GET /api/v1/alerts), wherever it runs: on
 * loopback (alerts-fire.test.ts) or inside the cluster tier's node (test/cluster/node-prometheus.ts).
 */

/** An alert pending or firing, as /api/v1/alerts lists it. */
export interface ActiveAlert {
  name: string;
  state: 'pending' | 'firing';
  labels: Record<string, string>;
}

/** The alerts of an /api/v1/alerts answer. */
export function activeAlerts(body: unknown): ActiveAlert[] {
  const alerts = (body as { data: { alerts: Array<Omit<ActiveAlert, 'name'>> } }).data.alerts;
  return alerts.map((a) => ({ name: a.labels['alertname'] ?? '?', state: a.state, labels: a.labels }));
}

export const isFiring = (alerts: ActiveAlert[], name: string): boolean =>
  alerts.some((a) => a.name === name && a.state === 'firing');

/** Pending or firing. */
export const isActive = (alerts: ActiveAlert[], name: string): boolean => alerts.some((a) => a.name === name);

/**
 * Reads the alerts until `cond` holds (resolves with them), running `between` after each read that
 * does not satisfy it (a wait, or the load that keeps a fault visible); throws after `timeoutMs`.
 */
export async function untilAlerts(
  read: () => Promise<ActiveAlert[]>,
  what: string,
  cond: (alerts: ActiveAlert[]) => boolean,
  timeoutMs: number,
  between: () => Promise<unknown> = () => new Promise((r) => setTimeout(r, 1000)),
): Promise<ActiveAlert[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await read();
    if (cond(now)) return now;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs / 1000} s; pending or firing: ${describeAlerts(now)}`);
    }
    await between();
  }
}

/** One line: each alert with its state and the pod (or front) it is about. */
export function describeAlerts(alerts: ActiveAlert[]): string {
  if (alerts.length === 0) return 'none';
  return alerts
    .map((a) => {
      const what = a.labels['pod'] ?? a.labels['front'];
      return `${a.name} (${a.state}${what ? `, ${what}` : ''})`;
    })
    .join(', ');
}
