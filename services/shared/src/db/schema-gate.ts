import type { Logger } from '../logger.js';
import type { Database } from './database.js';
import { LATEST_SCHEMA_VERSION, migrate, schemaVersion } from './migrations.js';

/**
 * Brings the schema up at start without blocking the listener: an origin applies the migrations, a
 * replica waits until its database shows them. Retries until it succeeds or `stop()` is called;
 * `ready()` feeds /readyz.
 */
export class SchemaGate {
  #ready = false;
  #stopped = false;
  #lastError = 'not checked yet';

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    private readonly mode: 'migrate' | 'wait',
  ) {}

  ready(): boolean {
    return this.#ready;
  }

  status(): string {
    return this.#ready ? 'ok' : `schema not ready: ${this.#lastError}`;
  }

  async run(): Promise<void> {
    let delay = 200;
    while (!this.#stopped && !this.#ready) {
      try {
        if (this.mode === 'migrate') await migrate(this.db, this.logger);
        const version = await schemaVersion(this.db);
        if (version >= LATEST_SCHEMA_VERSION) {
          this.#ready = true;
          this.logger.info({ version, role: this.db.role }, 'schema ready');
          return;
        }
        this.#lastError = `schema version ${version} < ${LATEST_SCHEMA_VERSION}`;
      } catch (err) {
        this.#lastError = (err as Error).message;
        this.logger.warn({ err: this.#lastError, role: this.db.role }, 'schema not ready yet; retrying');
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  stop(): void {
    this.#stopped = true;
  }
}
