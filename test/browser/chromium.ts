/**
 * The browser of the browser tier: Debian's Chromium (headless shell or full), driven by the pinned
 * playwright-core through its executablePath; nothing downloads a browser. scripts/test-tools.sh installs it.
 */
import { existsSync } from 'node:fs';

/** Where Debian's packages put it; BAZAR_CHROMIUM names another one. */
export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium-headless-shell', '/usr/bin/chromium'];

export function findChromium(): string | undefined {
  const given = process.env['BAZAR_CHROMIUM'];
  if (given) return existsSync(given) ? given : undefined;
  return CHROMIUM_CANDIDATES.find((p) => existsSync(p));
}
