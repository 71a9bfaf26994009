// Browser steps of remote approval: the shop's "Approve on another device"
// action on the requester's page, and the decision on the approver's own
// device, which is a separate browser context in the tests.
import assert from "node:assert/strict";
import { signInAtKeycloak } from "./keycloak.mjs";
import { readErrorPage } from "./shop.mjs";

/**
 * Clicks "Approve on another device" for `order` and waits until the page
 * shows the QR code and the short link. Returns `{ approval, link, qrUrl }`:
 * `approval` is the create response that the shop passed through, `link`
 * the short link as the page shows it and `qrUrl` the image's source.
 */
export async function requestRemoteRefund(page, order) {
  const isCreateResponse = (response) =>
    response.request().method() === "POST" && new URL(response.url()).pathname === `/refunds/${order}/approval`;
  const [response] = await Promise.all([page.waitForResponse(isCreateResponse), page.click(`button#remote-refund-${order}`)]);
  const approval = await response.json();
  if (response.status() !== 201) {
    throw new Error(`the shop did not create the approval request for order ${order}: HTTP ${response.status()} ${JSON.stringify(approval)}`);
  }

  await page.locator("#remote-approval").waitFor({ state: "visible" });
  // A loaded image has a size, which a failed load never gets.
  await page.waitForFunction(() => {
    const image = document.getElementById("remote-qr");
    return image.complete && image.naturalWidth > 0;
  });
  return {
    approval,
    link: (await page.locator("#remote-link").innerText()).trim(),
    qrUrl: await page.locator("#remote-qr").getAttribute("src"),
  };
}

/**
 * Records in the page the `Date.now()` at which `#refund-status` first shows
 * a final message, in `window.__refundShownAt`. Call it before the decision.
 */
export async function watchRefundStatus(page) {
  await page.evaluate(() => {
    const output = document.getElementById("refund-status");
    const observer = new MutationObserver(() => {
      const text = output.textContent.trim();
      if (text !== "" && text !== "waiting") {
        window.__refundShownAt = Date.now();
        observer.disconnect();
      }
    });
    observer.observe(output, { childList: true, characterData: true, subtree: true });
  });
}

/**
 * Opens `link` on `page` (the approver's device), signs `user` in at
 * Keycloak and waits for the decision page. Returns the decision button of
 * `decision` ("approve" or "reject"). With `link` null, `page` must already
 * be on its way to Keycloak's login form, as the SDK's popup is.
 */
export async function signInOnDevice(page, link, user, decision = "approve") {
  if (link !== null) {
    await page.goto(link);
  }
  await signInAtKeycloak(page, user);
  const button = page.locator(`[name="decision"][value="${decision}"]`);
  await button.waitFor({ state: "visible" });
  return button;
}

/**
 * Clicks a decision button on the decision page and returns
 * `{ clickedAt, status }`: `Date.now()` right before the click and the
 * HTTP status of `POST /popup/decision`.
 */
export async function clickDecision(page, button) {
  const isDecisionResponse = (response) =>
    response.request().method() === "POST" && new URL(response.url()).pathname === "/popup/decision";
  const clickedAt = Date.now();
  const [response] = await Promise.all([page.waitForResponse(isDecisionResponse), button.click()]);
  return { clickedAt, status: response.status() };
}

/** Clicks a decision button and fails unless Countersign accepted the decision. */
export async function decideOnDevice(page, button) {
  const { clickedAt, status } = await clickDecision(page, button);
  if (status !== 200) {
    const error = await readErrorPage(page).catch((cause) => ({ code: "?", message: cause.message }));
    assert.fail(`Countersign did not accept the decision: HTTP ${status}, error ${error.code} (${error.message})`);
  }
  return { clickedAt };
}
