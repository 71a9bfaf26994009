// Launches Debian's Chromium through playwright-core: `npx playwright install`
// cannot download a browser build on this project's machines.
import { chromium } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches a headless Chromium; close it with `browser.close()`. */
export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}

/** Returns the visible text of the page's body, whitespace collapsed. */
export async function visibleText(page) {
  const text = await page.locator("body").innerText();
  return text.replace(/\s+/g, " ").trim();
}
