// Headless Chromium for browser tests: the system's own (Debian's `chromium` package), driven by playwright-core,
// which downloads no browser of its own. Tests skip, saying why, where there is none.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** $KT_CHROMIUM, else the first system browser found; undefined if none. */
export function findChromium(): string | undefined {
  const own = process.env['KT_CHROMIUM'];
  if (own !== undefined && own !== '') return existsSync(own) ? own : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

const found = findChromium();
/** Pass as a node:test option. */
export const needChromium = found !== undefined ? {} : {
  skip: `no Chromium found (${process.env['KT_CHROMIUM'] ?? CANDIDATES.join(', ')}): apt-get install chromium, or set KT_CHROMIUM`,
};

/** A fresh headless browser (playwright gives it a temporary profile of its own). */
export async function launchChromium(): Promise<Browser> {
  if (found === undefined) throw new Error('no Chromium found');
  return chromium.launch({
    executablePath: found,
    // No sandbox: tests run as root in CI. The rest keeps Chromium from calling home, which a closed network
    // answers with a stream of refused connections and slow starts.
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-default-apps',
    ],
  });
}
