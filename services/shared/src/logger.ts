import { pino, type Logger } from 'pino';
import { currentRequestId } from './request-context.js';
import { currentTraceIds } from './tracing.js';

export type { Logger };

/**
 * pino JSON logs; tokens and credentials are redacted wherever they appear in a logged object.
 * The destination is synchronous: with an async one, a process exiting while its stdout pipe is gone
 * retries EPIPE forever (sonic-boom) instead of exiting. Nothing logs per request at `info`; at `debug`
 * every request and invalidation is logged, each line with the request's id (`reqId`). With tracing on,
 * every line written while a traced request is at work carries its `trace_id` and `span_id`.
 */
export function createLogger(opts: { name: string; level: string }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      base: { service: opts.name, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // The request a line is about, when requests are followed (request-context.ts: debug and trace).
      // With tracing on (tracing.ts), the trace and span it belongs to: the line's way into its trace.
      mixin: () => {
        const reqId = currentRequestId();
        const ids = currentTraceIds();
        if (ids === undefined) return reqId === undefined ? {} : { reqId };
        return reqId === undefined ? ids : { reqId, ...ids };
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
