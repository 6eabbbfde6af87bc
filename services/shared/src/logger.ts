import { pino, type Logger } from 'pino';
import { currentRequestId } from './request-context.js';

export type { Logger };

/**
 * pino JSON logs; tokens and credentials are redacted wherever they appear in a logged object.
 * The destination is synchronous: with an async one, a process exiting while its stdout pipe is gone
 * retries EPIPE forever (sonic-boom) instead of exiting. Nothing logs per request at `info`; at `debug`
 * every request and invalidation is logged, each line with the request's id (`reqId`).
 */
export function createLogger(opts: { name: string; level: string }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      base: { service: opts.name, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // The request a line is about, when requests are followed (request-context.ts: debug and trace).
      mixin: () => {
        const reqId = currentRequestId();
        return reqId === undefined ? {} : { reqId };
      },
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
