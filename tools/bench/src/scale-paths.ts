/**
 * What the bench at scale asks for (pure: unit-tested): random books over every seeded id and random
 * search pages (a topic, a position in it), drawn from a seeded generator so that Bazar and its chain
 * get the same sequence of requests; and the NOTIFY prototype's delivery delays from the listeners'
 * reports.
 */
import { encodeCursor } from '../../../services/shared/src/search-page.js';
import { FIRST_SEEDED_ID } from '../../../services/catalog/src/seed.js';
import { percentile } from './stats.js';

/** Every book of a store seeded with `books`: the lab's seven and ids 8 to books + 7. */
export function lastBookId(books: number): number {
  return books + FIRST_SEEDED_ID - 1;
}

/** `prefix/<id>`, the id uniform over [first, last]. */
export function randomBook(rand: () => number, first: number, last: number): number {
  return first + Math.floor(rand() * (last - first + 1));
}

export interface SearchPick {
  topic: string;
  /** The page starts after this id (0: the first page). */
  after: number;
}

/** A topic uniform over `topics` and a position uniform over every id: a page at a random depth. */
export function randomSearch(rand: () => number, topics: readonly string[], books: number): SearchPick {
  const topic = topics[Math.floor(rand() * topics.length)] as string;
  return { topic, after: Math.floor(rand() * (lastBookId(books) + 1)) };
}

/** Bazar's request for the page: the front's route, its opaque cursor (none for the first page). */
export function bazarSearchPath(pick: SearchPick, limit: number): string {
  const cursor = pick.after > 0 ? `&cursor=${encodeCursor(pick.topic, pick.after)}` : '';
  return `/search/${encodeURIComponent(pick.topic)}?limit=${limit}${cursor}`;
}

/** The chain's request for the same page: the id itself, no cursor. */
export function chainSearchPath(pick: SearchPick, limit: number): string {
  return `/search/${encodeURIComponent(pick.topic)}?after=${pick.after}&limit=${limit}`;
}

/** One probe write of the prototype: its number, when its statement was sent and its answer came (hrtime ns). */
export interface DeliveryProbe {
  w: number;
  sentNs: number;
  ackNs: number;
}

export interface DeliveryFigures {
  probes: number;
  listeners: number;
  /** Probe notifications some listener never reported. */
  missing: number;
  /** ms from the writer's answer (commit acknowledged) until the LAST listener had it, per probe. */
  allAfterAck: number[];
  /** ms from the writer's answer until each listener had it (every listener, every probe). */
  eachAfterAck: number[];
  /** ms from sending the statement until the last listener had it. */
  allAfterSend: number[];
  /** ms from sending the statement until its answer (the writer's own latency). */
  writer: number[];
}

/**
 * Joins the probes with what each listener received ([probe number, hrtime ns]). Negative "after ack"
 * values are notifications that reached a listener before the writer had its answer.
 */
export function deliveryDelays(
  probes: readonly DeliveryProbe[],
  received: ReadonlyArray<ReadonlyArray<readonly [number, number]>>,
): DeliveryFigures {
  const byListener = received.map((r) => new Map(r.map(([w, ns]) => [w, ns])));
  const out: DeliveryFigures = {
    probes: probes.length,
    listeners: received.length,
    missing: 0,
    allAfterAck: [],
    eachAfterAck: [],
    allAfterSend: [],
    writer: [],
  };
  for (const p of probes) {
    out.writer.push((p.ackNs - p.sentNs) / 1e6);
    const times = byListener.map((m) => m.get(p.w));
    const got = times.filter((t): t is number => t !== undefined);
    out.missing += times.length - got.length;
    for (const t of got) out.eachAfterAck.push((t - p.ackNs) / 1e6);
    if (got.length === times.length && got.length > 0) {
      const last = Math.max(...got);
      out.allAfterAck.push((last - p.ackNs) / 1e6);
      out.allAfterSend.push((last - p.sentNs) / 1e6);
    }
  }
  return out;
}

/** p50 / p99 of a list of milliseconds, for tables. */
export function p50p99(values: readonly number[]): { p50: number; p99: number } {
  return { p50: percentile(values as number[], 50), p99: percentile(values as number[], 99) };
}
