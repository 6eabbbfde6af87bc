/**
 * The NOTIFY prototype's SQL (bench --fanout), shared by the bare chain (bare-chain.ts) and the
 * bench's own delivery probes (scenarios/fanout-scale.ts): a purchase's UPDATE and a pg_notify of its
 * book and version in one statement, so that the notification is queued in the writing transaction
 * and delivered to every listener when it commits (never if it rolls back).
 */

/** The channel every listening front LISTENs on. */
export const CHAIN_CHANNEL = 'bazar_chain';

/** Each chain's own channel, so that one chain's listeners hear none of another's writes. */
export function chainChannel(fronts: number): string {
  return `${CHAIN_CHANNEL}_${fronts}`;
}

/** $1: the book; $2: a probe number the listeners report back (null for load); $3: the channel. */
export const NOTIFY_PURCHASE = `WITH b AS (
    UPDATE books SET stock = stock - 1, version = version + 1
    WHERE id = $1 AND stock > 0 RETURNING id, title, price, stock, version)
  SELECT b.*, pg_notify($3, json_build_object('id', b.id, 'version', b.version, 'w', $2::int)::text) AS n
  FROM b`;
