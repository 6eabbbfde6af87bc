import { ConfigError } from './config.js';

/**
 * Runs a service's composition root. A configuration error stops the process with a message naming the
 * variable (exit 78, EX_CONFIG); any other start-up failure exits 1 after printing it.
 */
export function runMain(main: () => Promise<unknown>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(78);
    }
    process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
