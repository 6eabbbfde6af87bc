import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writerInFlight } from './books.js';

describe('writerInFlight (a row updater still running for a snapshot)', () => {
  it('no updater, or one that finished before the snapshot, is not in flight', () => {
    assert.equal(writerInFlight('0', '750:760:'), false);
    assert.equal(writerInFlight('749', '750:760:'), false, 'below xmin: finished');
    assert.equal(writerInFlight('755', '750:760:'), false, 'between xmin and xmax, not listed: finished');
  });

  it('listed as running, or at or above the snapshot xmax, is in flight', () => {
    assert.equal(writerInFlight('755', '750:760:752,755'), true);
    assert.equal(writerInFlight('760', '750:760:'), true, 'the snapshot xmax itself');
    assert.equal(writerInFlight('770', '756:756:'), true, 'assigned after the snapshot was taken');
  });

  it('rebuilds the 64-bit xid across an epoch boundary, both ways', () => {
    const epoch = 2n ** 32n;
    // Snapshot just after the wrap (epoch 1, low 5); the row's updater got xid 2^32 - 3 in epoch 0.
    const snap = `${epoch - 10n}:${epoch + 5n}:${epoch - 3n}`;
    assert.equal(writerInFlight(String(2 ** 32 - 3), snap), true, 'previous epoch, still running');
    assert.equal(writerInFlight(String(2 ** 32 - 20), snap), false, 'previous epoch, below xmin');
    // Snapshot just before the wrap; the updater got low xid 2 in the next epoch: above xmax.
    assert.equal(writerInFlight('2', `${epoch - 10n}:${epoch - 4n}:`), true);
  });
});
