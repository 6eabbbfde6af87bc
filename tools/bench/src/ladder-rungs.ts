/**
 * The rungs a ladder server can be (ladder-server.ts), in order: a module of its own so that the
 * servers load nothing of the bench but this list.
 */
export const RUNGS = ['bare', 'got-loaded', 'front-process', 'hit-path', 'after-got'] as const;
export type ServerRung = (typeof RUNGS)[number];
