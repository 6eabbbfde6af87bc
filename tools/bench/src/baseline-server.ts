/**
 * The bench's baseline: a bare node:http server that answers every request with the same JSON bytes a
 * front serves for a cached GET /info/:id. No framework, no routing, no metrics: the ceiling for any
 * Node HTTP front on this machine. Started by the bench (fork); reports its port over IPC.
 */
import { listenBare } from './bare-server.js';

const port = await listenBare(Buffer.from(process.env['BASELINE_BODY'] ?? '{}'));
process.send?.({ port });
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
