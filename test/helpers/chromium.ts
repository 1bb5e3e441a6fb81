import { chromium, type Browser } from 'playwright-core';
import { requireBinary } from './binaries.js';

// CHROMIUM_PATH, else Debian's /usr/bin/chromium. Without it the importing test file fails at once with what to
// install.
const CHROMIUM = requireBinary('chromium');

/**
 * Real headless Chromium (Debian's, which the pretest step of `npm test` installs). The flags suit Debian's chromium
 * run as root in a container: no sandbox (root), no GPU, and /tmp instead of a small /dev/shm.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
