/**
 * Issue 14: `/docs` is usable as served: in real headless Chromium, "Authorize" takes an API token and
 * "Try it out" then gets answers, because the document declares the Bearer scheme. Without a token
 * the same call is a 401. Swagger UI's assets are served by the gateway itself (no network needed).
 */
import * as fs from 'node:fs';
import { Browser, chromium, Page } from 'playwright-core';
import { useSecuredGateway } from './support/security';
import { waitFor } from './support/wait';

jest.setTimeout(120_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('/docs (Swagger UI)', () => {
  const secured = useSecuredGateway({ LOG_LEVEL: 'error' });
  let browser: Browser;

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (or set CHROMIUM_PATH)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  });
  afterAll(() => browser?.close());

  /** The status Swagger UI shows for the last "Execute", once it is `expected` (or what it is after 20 s). */
  async function shownStatus(page: Page, expected: RegExp): Promise<string> {
    const cell = page.locator('#operations-resolve-ResolveController_list .live-responses-table tbody .response .response-col_status').first();
    let shown = '';
    // Not thrown: the caller's expect on the returned text says what was shown instead.
    await waitFor(`Swagger UI to show ${expected}`, async () => expected.test((shown = (await cell.innerText().catch(() => '')).trim())), 20_000).catch(() => undefined);
    return shown;
  }

  it('answers 401 to "Try it out" before Authorize, and 200 after it', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${secured.gw.url}/docs`);
      const operation = page.locator('#operations-resolve-ResolveController_list');
      await operation.locator('.opblock-summary').click();
      await operation.locator('button.try-out__btn').click();
      await operation.locator('button.execute').click();
      expect(await shownStatus(page, /^401/)).toMatch(/^401/);

      await page.locator('button.authorize').first().click();
      await page.locator('.modal-ux input').first().fill(secured.tokens.reader);
      await page.locator('.modal-ux button.authorize').click();
      await page.locator('.modal-ux button.close-modal').first().click();
      await operation.locator('button.execute').click();
      expect(await shownStatus(page, /^200/)).toMatch(/^200/);
    } finally {
      await page.close();
    }
  });
});
