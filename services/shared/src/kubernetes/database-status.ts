import type { PrimaryFacts } from '../db/primary-identity.js';
import type { Logger } from '../logger.js';
import { connect, describeError, statusOf, type KubeConnection } from './client.js';
import { statusApi, type StatusApi } from './status-writer.js';
import type { DatabaseStatus } from './store-policy.js';

const MAX_CONFLICT_RETRIES = 5;

/**
 * What `status.database` should become when a writer sees `facts`, or undefined to leave it: the
 * newest primary wins (a higher timeline, or another cluster altogether), so a writer that noticed a
 * failover late cannot put the old primary back.
 */
export function nextDatabaseStatus(
  current: DatabaseStatus | undefined,
  facts: PrimaryFacts,
  observedBy: string,
): DatabaseStatus | undefined {
  if (current && current.systemIdentifier === facts.systemIdentifier) {
    if (current.timeline > facts.timeline) return undefined;
    if (current.timeline === facts.timeline && current.primary === facts.member) return undefined;
  }
  return {
    primary: facts.member,
    timeline: facts.timeline,
    systemIdentifier: facts.systemIdentifier,
    observedBy,
    lastTransitionTime: facts.since,
  };
}

/**
 * Writes the writers' view of the primary into the StorePolicy status (`status.database`, shown by
 * `kubectl get storepolicy` as PRIMARY and TIMELINE): read, decide, merge-patch with a resourceVersion
 * precondition, re-read on conflict (the fronts write the same object).
 */
export async function writeDatabaseStatus(
  api: StatusApi,
  facts: PrimaryFacts,
  observedBy: string,
): Promise<'written' | 'unchanged' | 'missing'> {
  for (let attempt = 1; ; attempt++) {
    const resource = await api.get();
    if (!resource) return 'missing';
    const database = nextDatabaseStatus(resource.status?.database, facts, observedBy);
    if (!database) return 'unchanged';
    try {
      await api.patch({
        metadata: { resourceVersion: resource.metadata?.resourceVersion },
        status: { database },
      });
      return 'written';
    } catch (err) {
      if (statusOf(err) === 404) return 'missing';
      if (statusOf(err) !== 409 || attempt >= MAX_CONFLICT_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, 10 + Math.round(Math.random() * 40 * attempt)));
    }
  }
}

/** A reporter for PrimaryIdentity's changes: each one is written, failures are logged and retried. */
export function databaseStatusReporter(opts: {
  connection?: KubeConnection;
  config: Parameters<typeof connect>[0];
  name: string;
  podName: string;
  logger: Logger;
}): (facts: PrimaryFacts) => Promise<void> {
  const api = statusApi(opts.connection ?? connect(opts.config), opts.name);
  return async (facts) => {
    try {
      const outcome = await writeDatabaseStatus(api, facts, opts.podName);
      opts.logger.debug(
        { outcome, primary: facts.member, timeline: facts.timeline },
        'StorePolicy database status',
      );
    } catch (err) {
      opts.logger.warn({ ...describeError(err) }, 'could not write the primary into the StorePolicy status');
      throw err;
    }
  };
}
