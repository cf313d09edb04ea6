// Debian's Chromium through playwright-core, as both browser suites launch it: headless, no
// sandbox (root in CI), nothing running in the background, a throw-away profile.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const { tempDir } = require('../../js/support.js');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** A browser context with its own profile directory; `close()` removes both. */
export async function launchChromium(tag, viewport) {
  const userDataDir = tempDir(tag);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport,
    timeout: 30000,
  });
  return {
    context,
    async close() {
      try {
        await context.close();
      } finally {
        fs.rmSync(userDataDir, { recursive: true, force: true });
      }
    },
  };
}
