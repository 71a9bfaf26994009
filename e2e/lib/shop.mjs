// Browser steps in the demo shop and in Countersign's popup, through the
// elements docs/design.md names.
import assert from "node:assert/strict";
import { signInAtKeycloak } from "./keycloak.mjs";

/** Signs `user` in to the shop at `shopUrl` through Keycloak and waits for `#signed-in-as`. */
export async function signInToShop(page, shopUrl, user) {
  await page.goto(shopUrl);
  await Promise.all([page.waitForURL((url) => !url.href.startsWith(shopUrl)), page.click("a#sign-in")]);
  await signInAtKeycloak(page, user);
  await page.waitForURL((url) => url.href.startsWith(shopUrl));
  await page.locator("#signed-in-as").filter({ hasText: user.username }).waitFor();
}

/**
 * Order details of the demo shop (crates/demo-shop/src/orders.rs), as the
 * shop puts them into the approval payload.
 */
export const SHOP_ORDERS = {
  1001: { order: "1001", amount: "49.90", currency: "EUR", items: ["2 × Coffee beans"] },
  1002: { order: "1002", amount: "189.00", currency: "EUR", items: ["1 × Espresso machine"] },
  1003: { order: "1003", amount: "46.00", currency: "EUR", items: ["1 × Milk frother", "2 × Ceramic mug"] },
};

/**
 * Returns the payload that the shop hashes and consumes for a refund of
 * `order`, requested by `requester` (`{ sub, name }`).
 */
export function shopRefundPayload(order, requester) {
  const details = SHOP_ORDERS[order];
  if (!details) {
    throw new Error(`order ${order} is not a demo order, expected one of ${Object.keys(SHOP_ORDERS).join(", ")}`);
  }
  return { action: "refund", details: { ...details }, requester: { sub: requester.sub, name: requester.name } };
}

/** Clicks the refund button of `order` and returns the approval popup. */
export async function startRefund(page, order) {
  const [popup] = await Promise.all([page.waitForEvent("popup"), page.click(`button#refund-${order}`)]);
  return popup;
}

/**
 * Clicks the refund button of `order` and returns `{ popup, approval }`:
 * `approval` is the body of the shop's `POST /refunds/{order}/approval`
 * response, which is Countersign's create response (`id`, `approval_url`,
 * `payload_hash`, ...).
 */
export async function requestRefund(page, order) {
  const isCreateResponse = (response) =>
    response.request().method() === "POST" && new URL(response.url()).pathname === `/refunds/${order}/approval`;
  const [popup, response] = await Promise.all([
    page.waitForEvent("popup"),
    page.waitForResponse(isCreateResponse),
    page.click(`button#refund-${order}`),
  ]);
  const approval = await response.json();
  if (response.status() !== 201) {
    throw new Error(`the shop did not create the approval request for order ${order}: HTTP ${response.status()} ${JSON.stringify(approval)}`);
  }
  return { popup, approval };
}

/**
 * Signs `user` in inside the approval popup, then approves or rejects.
 * `decision` is "approve" or "reject"; `reason` is typed in when given.
 * Waits until the popup closes, which the result page does after sending
 * its message. Returns `{ clickedAt }`: `Date.now()` right before the click
 * on the decision button.
 *
 * Fails with an AssertionError that names the HTTP status, the error page
 * and the request's Origin and Sec-Fetch-Site headers when Countersign does
 * not accept the decision form.
 */
export async function decideInPopup(popup, user, { decision = "approve", reason } = {}) {
  await signInAtKeycloak(popup, user);
  const button = popup.locator(`[name="decision"][value="${decision}"]`);
  await button.waitFor({ state: "visible" });
  if (reason !== undefined) {
    await popup.fill('[name="reason"]', reason);
  }

  const closed = popup.waitForEvent("close");
  // The popup stays open when the decision fails, so this promise can reject
  // before anyone awaits it. The await at the end still receives the rejection.
  closed.catch(() => {});
  const isDecisionResponse = (response) =>
    response.request().method() === "POST" && new URL(response.url()).pathname === "/popup/decision";
  const clickedAt = Date.now();
  const [response] = await Promise.all([popup.waitForResponse(isDecisionResponse), button.click()]);

  if (response.status() !== 200) {
    const sent = await response.request().allHeaders();
    const page = await readErrorPage(popup).catch((error) => ({ code: "?", title: "?", message: `no error page: ${error.message}` }));
    assert.fail(
      `Countersign did not accept the "${decision}" decision: POST /popup/decision returned HTTP ${response.status()} ` +
        `and the popup shows error ${page.code} ("${page.title}": ${page.message}). ` +
        `The browser sent Origin: ${sent.origin ?? "(none)"}, Sec-Fetch-Site: ${sent["sec-fetch-site"] ?? "(none)"}.`,
    );
  }
  await closed;
  return { clickedAt };
}

/**
 * Reads Countersign's error page on `page`: `{ code, title, message, retryUrl }`.
 * `retryUrl` is the absolute URL of the "Try again" link, or null without one.
 */
export async function readErrorPage(page) {
  const code = page.locator("#error-code");
  await code.waitFor({ state: "visible" });
  const retry = page.locator("a#try-again");
  const retryHref = (await retry.count()) > 0 ? await retry.getAttribute("href") : null;
  return {
    code: (await code.innerText()).trim(),
    title: (await page.locator("h1").innerText()).trim(),
    message: (await page.locator("#message").innerText()).trim(),
    retryUrl: retryHref === null ? null : new URL(retryHref, page.url()).href,
  };
}

/**
 * Reads `GET /whoami` with the page's cookies. With `refresh` the shop runs a
 * refresh-token grant first. Returns `{ status, body }`.
 */
export async function shopWhoami(page, shopUrl, { refresh = false } = {}) {
  const response = await page.context().request.get(`${shopUrl}/whoami${refresh ? "?refresh=1" : ""}`);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = { raw: await response.text() };
  }
  return { status: response.status(), body };
}
