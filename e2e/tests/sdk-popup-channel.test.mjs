// The SDK's popup channel in Chromium against the real Keycloak. The tests
// cover a blocked popup and its retry, and Cross-Origin-Opener-Policy on the
// shop's page and on a page that the popup passes through. They also cover a
// popup that the user closes and reopens, abort and timeout, two approvals on
// one page, and a reload while a request is pending.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { launchBrowser } from "../lib/browser.mjs";
import { DEMO_USERS } from "../lib/keycloak.mjs";
import { approveInPopup, blockFirstPopup, readChannels, recordChannels, settledRefundStatus } from "../lib/sdk-page.mjs";
import { decideInPopup, requestRefund, signInToShop } from "../lib/shop.mjs";
import { startStack } from "../lib/stack.mjs";

/** Maximum time from closing the popup to the shop offering to reopen it. */
const CLOSED_REPORT_LIMIT_MS = 2_000;

let stack;
let browser;

before(async () => {
  stack = await startStack({ name: "sdk-popup-channel" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

function shopOrigin() {
  return new URL(stack.shop.url).origin;
}

function keycloakOrigin() {
  return `http://127.0.0.1:${stack.keycloak.port}`;
}

/**
 * Creates a browser context whose shop pages record the SDK's channels, signs
 * the cashier in to the shop and returns `{ context, page }`. The context is
 * closed when test `t` ends. `prepare(context)` runs before the first page opens.
 */
async function cashierPage(t, prepare = async () => {}) {
  await stack.admin.signOutDemoUsers();
  const context = await browser.newContext();
  t.after(() => context.close());
  await recordChannels(context, shopOrigin());
  await prepare(context);
  const page = await context.newPage();
  await signInToShop(page, stack.shop.url, DEMO_USERS.cashier);
  return { context, page };
}

/** Waits until `page` shows Keycloak's login form of the demo realm under Countersign's host name. */
async function waitForLoginForm(page) {
  await page.waitForURL((url) => url.origin === keycloakOrigin(), { timeout: 15_000 });
  await page.locator("#username").waitFor({ state: "visible" });
}

/** Returns whether `window.opener` is null in the page that `popup` shows. */
function openerIsSevered(popup) {
  return popup.evaluate(() => window.opener === null);
}

/**
 * Starts the SDK in `page` from page.evaluate, which Playwright runs as a
 * user gesture, so the popup opens. Stores the outcome in
 * `window.__outcomes[key]` once the promise settles: `{ status, id }` or
 * `{ code, id, name, causeMessage }`. `options` may hold `timeout` and
 * `abortable` (an AbortController in `window.__controllers[key]`).
 */
async function startSdkRequest(page, key, order, options = {}) {
  await page.evaluate(
    async ({ key, order, countersignOrigin, options }) => {
      const sdk = await import("/static/countersign.js");
      window.__outcomes ??= {};
      window.__controllers ??= {};
      const sdkOptions = {
        countersignOrigin,
        create: () => fetch(`/refunds/${order}/approval`, { method: "POST" }).then((response) => response.json()),
      };
      if (options.timeout !== undefined) sdkOptions.timeout = options.timeout;
      if (options.abortable) {
        window.__controllers[key] = new AbortController();
        sdkOptions.signal = window.__controllers[key].signal;
      }
      sdk.requestApproval(sdkOptions).then(
        (result) => (window.__outcomes[key] = { status: result.status, id: result.id }),
        (error) =>
          (window.__outcomes[key] = {
            code: error.code,
            id: error.id ?? null,
            name: error.name,
            causeMessage: error.cause?.message ?? null,
          }),
      );
    },
    { key, order, countersignOrigin: stack.countersign.url, options },
  );
}

/** Returns the outcome that `startSdkRequest` stored under `key`, or null while it is pending. */
function sdkOutcome(page, key) {
  return page.evaluate((key) => window.__outcomes?.[key] ?? null, key);
}

async function waitForSdkOutcome(page, key, timeout = 15_000) {
  await page.waitForFunction((key) => window.__outcomes?.[key] !== undefined, key, { timeout });
  return sdkOutcome(page, key);
}

describe("sdk popup channel", () => {
  test("blocked popup offers a working retry", async (t) => {
    const creates = [];
    const { page } = await cashierPage(t, (context) => blockFirstPopup(context, shopOrigin()));
    page.on("request", (request) => {
      if (request.method() === "POST" && new URL(request.url()).pathname.endsWith("/approval")) creates.push(request.url());
    });

    await page.click("button#refund-1001");
    assert.equal(await settledRefundStatus(page, 2_000), "Refund of order 1001 not done: popup_blocked");
    assert.match(await page.locator("#refund-detail").innerText(), /blocked the approval popup/);
    assert.deepEqual(creates, [], "a blocked popup must not create a request");
    const retry = page.locator("button#refund-retry");
    assert.equal(await retry.isVisible(), true, "the shop must offer a retry");

    const [popup] = await Promise.all([page.waitForEvent("popup"), retry.click()]);
    await decideInPopup(popup, DEMO_USERS.manager, { decision: "approve" });

    assert.equal(await settledRefundStatus(page), "Refund of order 1001 executed, approved by Maria Manager (manager)");
    assert.equal(creates.length, 1);
    assert.equal(await retry.isVisible(), false);
  });

  test("COOP on the shop page resolves through the stream", async (t) => {
    const { page } = await cashierPage(t);
    const response = await page.goto(`${stack.shop.url}/?coop=same-origin`);
    assert.equal(response.headers()["cross-origin-opener-policy"], "same-origin");

    const { popup, approval } = await requestRefund(page, "1001");
    await waitForLoginForm(popup);
    assert.equal(await openerIsSevered(popup), true, "COOP on the shop's page must sever window.opener");
    // The shop's reference to the severed popup reads closed, so the SDK reports it.
    await page.locator("button#refund-reopen").waitFor({ state: "visible", timeout: CLOSED_REPORT_LIMIT_MS });
    assert.equal(await page.locator("#refund-status").innerText(), "waiting");

    const { clickedAt } = await approveInPopup(popup, DEMO_USERS.manager);
    assert.equal(await settledRefundStatus(page), "Refund of order 1001 executed, approved by Maria Manager (manager)");

    const resolvedAt = await page.evaluate(() => window.__countersignTimes?.resolvedAt);
    assert.equal(typeof resolvedAt, "number", "the shop did not record when the SDK promise settled");
    console.log(`approve-to-resolve-ms (stream only): ${resolvedAt - clickedAt}`);
    const channels = await readChannels(page);
    assert.deepEqual(channels.resultMessages, [], "no popup message may reach a page whose popup was severed");
    assert.deepEqual(channels.eventSourceStates, [2]);
    assert.equal((await stack.countersign.api.status(approval.id)).body.status, "approved");
  });

  test("COOP hop page severs opener, stream resolves", async (t) => {
    const { page } = await cashierPage(t);
    const { popup, approval } = await requestRefund(page, "1002");
    await waitForLoginForm(popup);
    assert.equal(await openerIsSevered(popup), false, "without COOP the popup must keep window.opener");

    // The popup leaves Countersign for the shop's hop page, which sends
    // Cross-Origin-Opener-Policy: same-origin and then returns to the approval URL.
    const hopUrl = `${stack.shop.url}/coop-hop?to=${encodeURIComponent(approval.approval_url)}`;
    const hopResponse = popup.waitForResponse((response) => new URL(response.url()).pathname === "/coop-hop");
    await popup.evaluate((url) => {
      window.location.href = url;
    }, hopUrl);
    assert.equal((await hopResponse).headers()["cross-origin-opener-policy"], "same-origin");
    await waitForLoginForm(popup);
    assert.equal(await openerIsSevered(popup), true, "the hop page must sever window.opener");
    await page.locator("button#refund-reopen").waitFor({ state: "visible", timeout: CLOSED_REPORT_LIMIT_MS });

    await approveInPopup(popup, DEMO_USERS.manager);
    assert.equal(await settledRefundStatus(page), "Refund of order 1002 executed, approved by Maria Manager (manager)");
    assert.deepEqual((await readChannels(page)).resultMessages, [], "the severed popup's message cannot reach the shop");
  });

  test("closed popup is reported and reopens", async (t) => {
    const { page } = await cashierPage(t);
    const { popup, approval } = await requestRefund(page, "1003");
    await waitForLoginForm(popup);

    const closedAt = Date.now();
    await popup.close();
    await page.locator("button#refund-reopen").waitFor({ state: "visible", timeout: CLOSED_REPORT_LIMIT_MS });
    const reportMs = Date.now() - closedAt;
    console.log(`close-to-report-ms: ${reportMs}`);
    assert.ok(reportMs <= CLOSED_REPORT_LIMIT_MS, `the shop offered to reopen after ${reportMs} ms`);
    assert.equal(await page.locator("#refund-status").innerText(), "waiting");
    assert.match(await page.locator("#refund-detail").innerText(), /still open/);
    assert.equal((await stack.countersign.api.status(approval.id)).body.status, "pending");

    const [reopened] = await Promise.all([page.waitForEvent("popup"), page.click("button#refund-reopen")]);
    await waitForLoginForm(reopened);
    assert.equal(await page.locator("button#refund-reopen").isVisible(), false);
    const names = (await readChannels(page)).opened.map((call) => call.name);
    assert.equal(names.length, 2);
    assert.notEqual(names[0], names[1], "the reopened popup needs a window name of its own");

    await decideInPopup(reopened, DEMO_USERS.manager, { decision: "approve" });
    assert.equal(await settledRefundStatus(page), "Refund of order 1003 executed, approved by Maria Manager (manager)");
    const channels = await readChannels(page);
    assert.equal(channels.resultMessages.length, 1, "the reopened popup's message must reach the shop");
  });

  test("abort closes popup and stream", async (t) => {
    const { page } = await cashierPage(t);
    const listenersBefore = (await readChannels(page)).messageListenerCount;

    const [popup] = await Promise.all([page.waitForEvent("popup"), startSdkRequest(page, "abort", "1001", { abortable: true })]);
    await waitForLoginForm(popup);
    await page.waitForFunction(() => window.__channels.eventSources[0]?.readyState === 1);
    assert.equal((await readChannels(page)).messageListenerCount, listenersBefore + 1);

    const closed = popup.waitForEvent("close", { timeout: 2_000 });
    await page.evaluate(() => window.__controllers.abort.abort(new Error("cashier cancelled")));
    const outcome = await waitForSdkOutcome(page, "abort", 2_000);
    await closed;

    assert.equal(outcome.name, "CountersignError");
    assert.equal(outcome.code, "aborted");
    assert.equal(outcome.causeMessage, "cashier cancelled");
    assert.equal(typeof outcome.id, "string");
    const channels = await readChannels(page);
    assert.deepEqual(channels.eventSourceStates, [2], "the status stream must be closed");
    assert.equal(channels.messageListenerCount, listenersBefore, "the message listener must be removed");
    // Abort only stops following: the request stays pending at Countersign until it expires.
    assert.equal((await stack.countersign.api.status(outcome.id)).body.status, "pending");
  });

  test("timeout closes popup and stream", async (t) => {
    const { page } = await cashierPage(t);
    const listenersBefore = (await readChannels(page)).messageListenerCount;

    const [popup] = await Promise.all([page.waitForEvent("popup"), startSdkRequest(page, "timeout", "1002", { timeout: 3_000 })]);
    const closed = popup.waitForEvent("close", { timeout: 10_000 });
    const outcome = await waitForSdkOutcome(page, "timeout", 10_000);
    await closed;

    assert.equal(outcome.name, "CountersignError");
    assert.equal(outcome.code, "timeout");
    assert.equal(typeof outcome.id, "string");
    const channels = await readChannels(page);
    assert.deepEqual(channels.eventSourceStates, [2]);
    assert.equal(channels.messageListenerCount, listenersBefore);
  });

  test("two approvals on one page stay apart", async (t) => {
    const { page } = await cashierPage(t);
    const popups = [];
    page.on("popup", (popup) => popups.push(popup));
    // Create responses by order number, from `POST /refunds/{order}/approval`.
    const createResponses = new Map();
    page.on("response", (response) => {
      const match = new URL(response.url()).pathname.match(/^\/refunds\/(\d+)\/approval$/);
      if (match && response.request().method() === "POST") createResponses.set(match[1], response.json());
    });

    await startSdkRequest(page, "first", "1001");
    await startSdkRequest(page, "second", "1002");
    await page.waitForFunction(() => window.__channels.eventSources.length === 2);
    assert.equal(popups.length, 2);
    const first = await createResponses.get("1001");
    const second = await createResponses.get("1002");
    const names = (await readChannels(page)).opened.map((call) => call.name);
    assert.equal(names.length, 2);
    assert.notEqual(names[0], names[1], "each popup needs a window name of its own");

    // Both popups share Keycloak's cookies, so each sign-in starts afresh at
    // its approval URL, one at a time. Two login forms open at once in one
    // Keycloak authentication session can make Keycloak restart a login
    // ("expired_code"), so the second popup waits on a blank page.
    // The SDK navigates each popup once its create call returns, so wait for
    // both login forms before the test navigates a popup itself.
    await Promise.all(popups.map((popup) => waitForLoginForm(popup)));
    await popups[1].goto("about:blank");
    await popups[0].goto(first.approval_url);
    await decideInPopup(popups[0], DEMO_USERS.manager, { decision: "approve" });
    assert.deepEqual(await waitForSdkOutcome(page, "first"), { status: "approved", id: first.id });
    await sleep(1_000);
    assert.equal(await sdkOutcome(page, "second"), null, "the first approval settled the second request");
    const afterFirst = await readChannels(page);
    assert.equal(afterFirst.resultMessages.length, 1, "the first popup's message must reach the page, else this test checks nothing");
    assert.equal(afterFirst.resultMessages[0].data.id, first.id);

    await popups[1].goto(second.approval_url);
    await decideInPopup(popups[1], DEMO_USERS.manager, { decision: "approve" });
    assert.deepEqual(await waitForSdkOutcome(page, "second"), { status: "approved", id: second.id });
  });

  test("reloaded page resumes the pending request", async (t) => {
    const { page } = await cashierPage(t);
    const { popup, approval } = await requestRefund(page, "1002");
    await waitForLoginForm(popup);

    await page.reload();
    await page.locator("#signed-in-as").waitFor();
    const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem("countersign-demo-shop:pending-refund")));
    assert.equal(stored?.id, approval.id);
    assert.equal(stored?.order, "1002");
    assert.equal(await page.locator("#refund-status").innerText(), "waiting");
    // followApproval has no popup of its own, so the shop offers to open one.
    await page.locator("button#refund-reopen").waitFor({ state: "visible", timeout: CLOSED_REPORT_LIMIT_MS });
    assert.deepEqual((await readChannels(page)).opened, [], "resuming must not open a popup");

    await decideInPopup(popup, DEMO_USERS.manager, { decision: "approve" });
    assert.equal(await settledRefundStatus(page), "Refund of order 1002 executed, approved by Maria Manager (manager)");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("countersign-demo-shop:pending-refund")), null);

    await page.reload();
    await page.locator("#signed-in-as").waitFor();
    assert.equal(await page.locator("#refund-status").innerText(), "", "a settled request must not resume");
    assert.equal(await page.locator("#order-status-1002").innerText(), "refunded");
  });
});
