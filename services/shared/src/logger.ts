import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * pino JSON logs; tokens and credentials are redacted wherever they appear in a logged object.
 * The destination is synchronous: with an async one, a process exiting while its stdout pipe is gone
 * retries EPIPE forever (sonic-boom) instead of exiting. Nothing logs per request at `info`.
 */
export function createLogger(opts: { name: string; level: string }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      base: { service: opts.name, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'authorization',
          'headers.authorization',
          'req.headers.authorization',
          '*.authorization',
          'token',
          '*.token',
          'password',
          '*.password',
          'ADMIN_TOKEN',
          'INTERNAL_TOKEN',
        ],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: 1, sync: true }),
  );
}
