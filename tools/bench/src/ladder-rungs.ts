/**
 * The rungs a ladder server can be (ladder-server.ts), in order, each with everything of the rungs
 * below it: a module of its own so that the servers load nothing of the bench but this list.
 */
export const RUNGS = ['bare', 'got-loaded', 'got-used', 'front-process', 'hit-path'] as const;
export type ServerRung = (typeof RUNGS)[number];
