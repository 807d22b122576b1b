/**
 * Test helper: the real Chromium the browser tests drive (Debian's, through playwright-core), and
 * seed 000's page code they run in it.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

/** Debian's Chromium; AUDIENT_CHROMIUM points elsewhere (another distribution's path). */
export const CHROMIUM = process.env['AUDIENT_CHROMIUM'] ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here (Chromium is missing), or `undefined` when they can. */
export const chromiumMissing: string | undefined = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not found (apt-get install -y chromium)`;

/**
 * The `skip` of a browser suite: why it is skipped, or `false` when it runs. With `CI=true` it
 * always runs, so a missing Chromium fails there instead of passing unnoticed.
 */
export const chromiumSkip: string | false = process.env['CI'] === 'true' ? false : (chromiumMissing ?? false);

/** Headless, no sandbox, no background traffic (updates, sync, QUIC). */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launches Chromium with the usual arguments and `extraArgs` after them. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/** Seed 000's purchase, verbatim, followed by the page's `handler` (`.then(…)…`). */
export function seedPurchase(handler: string): string {
  return `alloy("sendEvent", {
  "renderDecisions": true,
  "xdm": {
    "commerce": {
      "order": {
        "purchaseID": "a8g784hjq1mnp3",
        "purchaseOrderNumber": "VAU3123",
        "currencyCode": "USD",
        "priceTotal": 999.98
      }
    }
  }
})${handler}`;
}
