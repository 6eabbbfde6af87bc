import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cacheLayout } from './paths.js';
import { removeStale } from './rootfs.js';

describe('the image cache shared by concurrent runs', () => {
  it('a scoped run (BAZAR_IMAGE_SCOPE) has its own index and archives, and reads the shared archives', () => {
    const plain = cacheLayout({ BAZAR_CACHE_DIR: '/c' });
    assert.equal(plain.index, '/c/images/images.json');
    assert.equal(plain.archives, '/c/images/archives');
    assert.equal(plain.sharedArchives, undefined);
    const scoped = cacheLayout({ BAZAR_CACHE_DIR: '/c', BAZAR_IMAGE_SCOPE: 'skaffold-tier' });
    assert.equal(scoped.index, '/c/images/scopes/skaffold-tier/images.json');
    assert.equal(scoped.chartValues, '/c/images/scopes/skaffold-tier/chart-values.yaml');
    assert.equal(scoped.archives, '/c/images/scopes/skaffold-tier/archives');
    assert.equal(scoped.sharedArchives, '/c/images/archives');
    assert.equal(scoped.storage, plain.storage, "buildah's storage is shared");
    assert.equal(scoped.rootfs, plain.rootfs, 'root filesystems are shared');
    assert.throws(() => cacheLayout({ BAZAR_IMAGE_SCOPE: '../x' }), /BAZAR_IMAGE_SCOPE/);
  });

  it('removeStale with a grace keeps an older archive made or used within it, and removes it after', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bazar-images-stale-'));
    try {
      const file = (key: string) => path.join(dir, `catalog@${key}.tar`);
      for (const key of ['new', 'recent', 'old']) writeFileSync(file(key), key);
      writeFileSync(path.join(dir, 'front@old.tar'), 'other image');
      const fourHoursAgo = new Date(Date.now() - 4 * 3600_000);
      utimesSync(file('old'), fourHoursAgo, fourHoursAgo);
      utimesSync(path.join(dir, 'front@old.tar'), fourHoursAgo, fourHoursAgo);
      await removeStale(dir, 'catalog', new Set([file('new')]), { graceMs: 3 * 3600_000 });
      assert.deepEqual(
        ['new', 'recent', 'old'].map((k) => existsSync(file(k))),
        [true, true, false],
        'the kept one and the recent one stay; the one unused for longer than the grace goes',
      );
      assert.ok(existsSync(path.join(dir, 'front@old.tar')), "another image's archive is not touched");
      await removeStale(dir, 'catalog', new Set([file('new')]));
      assert.equal(existsSync(file('recent')), false, 'without a grace, every other key goes');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
