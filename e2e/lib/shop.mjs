// Browser steps in the demo shop and in Countersign's popup, through the
// elements docs/design.md names.
import { signInAtKeycloak } from "./keycloak.mjs";

/** Signs `user` in to the shop at `shopUrl` through Keycloak and waits for `#signed-in-as`. */
export async function signInToShop(page, shopUrl, user) {
  await page.goto(shopUrl);
  await Promise.all([page.waitForURL((url) => !url.href.startsWith(shopUrl)), page.click("a#sign-in")]);
  await signInAtKeycloak(page, user);
  await page.waitForURL((url) => url.href.startsWith(shopUrl));
  await page.locator("#signed-in-as").filter({ hasText: user.username }).waitFor();
}

/** Clicks the refund button of `order` and returns the approval popup. */
export async function startRefund(page, order) {
  const [popup] = await Promise.all([page.waitForEvent("popup"), page.click(`button#refund-${order}`)]);
  return popup;
}

/**
 * Signs `user` in inside the approval popup, then approves or rejects.
 * `decision` is "approve" or "reject"; `reason` is typed in when given.
 * Waits until the popup closes, which the result page does after sending
 * its message.
 */
export async function decideInPopup(popup, user, { decision = "approve", reason } = {}) {
  await signInAtKeycloak(popup, user);
  const button = popup.locator(`[name="decision"][value="${decision}"]`);
  await button.waitFor({ state: "visible" });
  if (reason !== undefined) {
    await popup.fill('[name="reason"]', reason);
  }
  await Promise.all([popup.waitForEvent("close"), button.click()]);
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
