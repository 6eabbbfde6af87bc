/**
 * The browser tier: the front's live page (GET /live) in a real browser (Debian's Chromium through
 * playwright-core) against a real store, as a student watches it: requests appear as they are
 * answered (hit or miss, catalog pod, database, version), invalidations as they arrive, the cache's
 * versions and fences and the standby's replay as they change; the knobs change nothing without the
 * admin token and switch the mode live with it; no token is ever on the page. BAZAR_SCREENSHOT_DIR=dir
 * keeps its screenshots there (docs/live-page.png is one).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ControlServer, StoreControl } from '../../tools/devstack/src/control.js';
import { startStack, type Stack } from '../../tools/devstack/src/stack.js';
import { findChromium } from './chromium.js';

/**
 * The DOM as the functions passed to the page (they run in the browser) use it: this project compiles
 * without the DOM library.
 */
interface PageNode {
  textContent: string | null;
  querySelectorAll(selector: string): ArrayLike<PageNode> & Iterable<PageNode>;
}
declare const document: PageNode & { querySelector(selector: string): PageNode | null };

describe('the live page in a real browser', { timeout: 180_000 }, () => {
  let dataDir: string;
  let stack: Stack;
  let knobs: ControlServer;
  let control: StoreControl;
  let browser: Browser;
  let page: Page;
  let front: string;
  let shots: string;

  const cellTexts = (selector: string) =>
    page.$$eval(selector, (rows) =>
      rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')),
    );
  const policyFile = () => readFile(path.join(dataDir, 'policy.json'), 'utf8');

  before(async () => {
    const executablePath = findChromium();
    assert.ok(executablePath, 'no Chromium here: bash scripts/test-tools.sh installs it');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'bazar-browser-'));
    shots = process.env['BAZAR_SCREENSHOT_DIR'] ?? dataDir;
    knobs = await ControlServer.listen();
    stack = await startStack({
      dataDir,
      fronts: 2,
      fsync: false,
      logLevel: 'warn',
      logDir: path.join(dataDir, 'logs'),
      policyFile: path.join(dataDir, 'policy.json'),
      knobsUrl: knobs.url,
    });
    control = new StoreControl(stack, path.join(dataDir, 'policy.json'));
    knobs.attach(control, stack.adminToken);
    front = stack.fronts[0]!.url;
    browser = await chromium.launch({ executablePath });
    page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
    await page.goto(`${front}/live`);
    await page.waitForSelector('#conn.live', { timeout: 10_000 });
  });

  after(async () => {
    await browser?.close();
    knobs?.close();
    await stack?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('shows each request as it is answered: a miss (catalog pod, database, version), then a hit', async () => {
    await fetch(`${front}/info/3`);
    await fetch(`${front}/info/3`);
    await page.waitForFunction(() => document.querySelectorAll('#requests tr').length >= 2);
    const [hit, miss] = await cellTexts('#requests tr');
    assert.deepEqual([hit![1], hit![2], hit![3], hit![4]], ['GET /info/3', '200', 'hit', 'front-0']);
    assert.deepEqual([miss![1], miss![2], miss![3]], ['GET /info/3', '200', 'miss']);
    assert.match(miss![4]!, /^catalog-(origin|replica)-0$/);
    assert.match(miss![5]!, /^(primary|standby) 127\.0\.0\.1:\d+$/);
    const book = (await (await fetch(`${front}/info/3`)).json()) as { version: number };
    assert.equal(miss![6], String(book.version), 'the version the answer showed');
  });

  it("shows the invalidation another front's purchase sends, and the cache's new fence", async () => {
    const res = await fetch(`${stack.fronts[1]!.url}/purchase/3`, { method: 'POST' });
    const bought = (await res.json()) as { version: number };
    await page.waitForFunction(
      (v) =>
        [...document.querySelectorAll('#invalidations tr')].some((r) => r.textContent?.includes(`3 (v${v})`)),
      bought.version,
    );
    const [latest] = await cellTexts('#invalidations tr');
    assert.equal(latest![1], 'invalidate');
    assert.match(latest![2]!, /^order-(origin|replica)-0$/, 'from the order pod that wrote it');
    // Strict mode: the write was announced first.
    const kinds = (await cellTexts('#invalidations tr')).map((r) => r[1]);
    assert.ok(kinds.includes('write announced'));
    await page.waitForFunction(
      (v) =>
        [...document.querySelectorAll('#books tr')].some((r) => {
          const td = r.querySelectorAll('td');
          return td[0]?.textContent === '3' && td[2]?.textContent === `v${v}`;
        }),
      bought.version,
      { timeout: 5000 },
    );
  });

  it("shows the standby's replay as it changes (a lag made on purpose)", async () => {
    await control.replay({ delayMs: 1500 });
    try {
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll('#pods tr')].some(
            (r) => r.textContent?.startsWith('catalog-replica-0') && r.textContent.includes('1500 ms'),
          ),
        null,
        { timeout: 5000 },
      );
    } finally {
      await control.replay({ delayMs: 0 });
    }
  });

  it('changes nothing without the admin token; with it, switches the mode live, and the page shows it', async () => {
    await page.click('button[data-policy=\'{"consistencyMode":"eventual"}\']');
    await page.waitForFunction(() =>
      document.querySelector('#knob-msg')?.textContent?.includes('admin token'),
    );
    assert.match(await policyFile(), /"consistencyMode": "strict"/, 'nothing changed');
    await page.fill('#token', stack.adminToken);
    await page.click('#token-use');
    assert.equal(await page.inputValue('#token'), '', 'the field does not keep the token');
    await page.click('button[data-policy=\'{"consistencyMode":"eventual"}\']');
    await page.waitForFunction(() => document.querySelector('#mode')?.textContent === 'eventual', null, {
      timeout: 10_000,
    });
    assert.match(await policyFile(), /"consistencyMode": "eventual"/);
    for (const p of stack.all) {
      const readyz = (await (await fetch(`${p.url}/readyz`)).json()) as {
        policy: { consistencyMode: string };
      };
      assert.equal(readyz.policy.consistencyMode, 'eventual', `${p.name} has the new mode`);
    }
    await page.waitForFunction(() => document.querySelectorAll('#processes tr').length === 6, null, {
      timeout: 5000,
    });
    await page.screenshot({ path: path.join(shots, 'live-page.png'), fullPage: true });
    await control.setPolicy({ consistencyMode: 'strict' });
  });

  it('never shows a token: not in the page, its config, its events, nor its DOM after one was typed', async () => {
    const tokens = [stack.adminToken, stack.internalToken];
    const html = await (await fetch(`${front}/live`)).text();
    const config = await (await fetch(`${front}/live/config`)).text();
    // The stream never ends by itself: read what 2.5 s of it carried.
    const streamed = await readEvents(`${front}/live/events`, 2500);
    const dom = await page.content();
    for (const token of tokens) {
      for (const [what, text] of Object.entries({ html, config, streamed, dom })) {
        assert.ok(!text.includes(token), `${what} shows a token`);
      }
    }
    assert.ok(streamed.includes('event: snapshot'), 'the stream was read');
  });

  it('a page that goes away ends its stream quietly: no front logs an error', async () => {
    await page.close();
    await readEvents(`${front}/live/events`, 300);
    await new Promise((r) => setTimeout(r, 500));
    for (const f of stack.fronts) {
      const log = await readFile(path.join(dataDir, 'logs', `${f.name}.log`), 'utf8');
      const errors = log.split('\n').filter((l) => /"level":(50|60)/.test(l));
      assert.deepEqual(errors, [], `${f.name} logged no error`);
    }
  });
});

/** What an event stream carried in `ms`. */
async function readEvents(url: string, ms: number): Promise<string> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const stop = setTimeout(() => controller.abort(), ms);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // Aborted: the time is up.
  } finally {
    clearTimeout(stop);
  }
  return text;
}
