// Remote approval through the demo shop, Countersign and the real Keycloak:
// the cashier's page shows a QR code and a short link, and the manager
// signs in and decides in a second, separate browser context, as on their
// own phone. The cashier's page learns the outcome from the status stream.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser } from "../lib/browser.mjs";
import { DEMO_USERS } from "../lib/keycloak.mjs";
import { readErrorPage, requestRefund, shopWhoami, signInToShop } from "../lib/shop.mjs";
import { clickDecision, decideOnDevice, requestRemoteRefund, signInOnDevice, watchRefundStatus } from "../lib/remote.mjs";
import { startStack } from "../lib/stack.mjs";

/** Length of the short code in the remote link (`REMOTE_CODE_LENGTH` in crates/countersign/src/approvals/remote_code.rs). */
const REMOTE_CODE_LENGTH = 10;

let stack;
let browser;

before(async () => {
  stack = await startStack({ name: "remote-approval" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Creates a browser context that is closed when test `t` ends. */
async function newContext(t) {
  const context = await browser.newContext();
  t.after(() => context.close());
  return context;
}

/** Waits until `#refund-status` shows a final message, not `waiting`, and returns it. */
async function settledRefundStatus(page) {
  await page.waitForFunction(
    () => {
      const text = document.getElementById("refund-status")?.textContent.trim() ?? "";
      return text !== "" && text !== "waiting";
    },
    null,
    { timeout: 15_000 },
  );
  return (await page.locator("#refund-status").innerText()).trim();
}

async function sessionClients(username) {
  const sessions = await stack.admin.userSessions(username);
  return sessions.map((session) => Object.values(session.clients ?? {}).sort());
}

describe("remote approval", () => {
  test("manager approves on another device", async (t) => {
    await stack.admin.signOutDemoUsers();
    const requesterContext = await newContext(t);
    const page = await requesterContext.newPage();
    await signInToShop(page, stack.shop.url, DEMO_USERS.cashier);
    const popups = [];
    page.on("popup", (popup) => popups.push(popup));

    const { approval, link, qrUrl } = await requestRemoteRefund(page, "1001");

    assert.equal(link, approval.remote_url);
    assert.equal(qrUrl, approval.remote_qr_url);
    assert.match(link, new RegExp(`^${stack.countersign.url}/r/[0-9a-z]{${REMOTE_CODE_LENGTH}}$`));
    assert.equal(await page.locator("#refund-status").innerText(), "waiting");
    await watchRefundStatus(page);

    const deviceContext = await newContext(t);
    const device = await deviceContext.newPage();
    const approve = await signInOnDevice(device, link, DEMO_USERS.manager);
    assert.equal(new URL(device.url()).origin, stack.countersign.url);
    const { clickedAt } = await decideOnDevice(device, approve);
    assert.match(await device.locator("#outcome").innerText(), /approved/);

    assert.equal(await settledRefundStatus(page), "Refund of order 1001 executed, approved by Maria Manager (manager)");
    const shownAt = await page.evaluate(() => window.__refundShownAt);
    assert.equal(typeof shownAt, "number", "the page did not record when it showed the result");
    const remoteApproveToScreenMs = shownAt - clickedAt;
    console.log(`remote-approve-to-screen-ms: ${remoteApproveToScreenMs}`);
    assert.ok(remoteApproveToScreenMs >= 0, `the result showed ${-remoteApproveToScreenMs} ms before the click on Approve`);

    assert.equal(await page.locator("#order-status-1001").innerText(), "refunded");
    assert.equal(await page.locator("#remote-approval").isHidden(), true, "the QR code must be hidden after the decision");
    assert.deepEqual(popups, [], "remote approval must not open a popup");

    const cookies = await requesterContext.cookies();
    const describeCookie = (cookie) => `${cookie.name} (${cookie.domain}${cookie.path})`;
    assert.deepEqual(cookies.filter((cookie) => cookie.name === "countersign_login").map(describeCookie), []);
    assert.deepEqual(
      cookies.filter((cookie) => cookie.domain === "127.0.0.1").map(describeCookie),
      [],
      "the requester's browser must hold no cookie of Countersign's or Keycloak's approval host",
    );
    assert.deepEqual(await sessionClients("manager"), [], "the manager's Keycloak session must be ended");

    const whoami = await shopWhoami(page, stack.shop.url, { refresh: true });
    assert.equal(whoami.status, 200, JSON.stringify(whoami.body));
    assert.equal(whoami.body.username, "cashier");

    const status = await stack.countersign.api.status(approval.id);
    assert.equal(status.body.status, "approved");
    assert.equal(status.body.consumed, true);

    // The link of a decided request now ends on a page, not at Keycloak.
    await device.goto(link);
    const error = await readErrorPage(device);
    assert.equal(error.code, "already_decided");
    assert.equal(new URL(device.url()).origin, stack.countersign.url);
  });

  test("first device to decide wins", async (t) => {
    await stack.admin.signOutDemoUsers();
    const requesterContext = await newContext(t);
    const page = await requesterContext.newPage();
    await signInToShop(page, stack.shop.url, DEMO_USERS.cashier);

    // The popup of the ordinary flow and a remote device on the same request.
    const { popup, approval } = await requestRefund(page, "1002");
    const deviceContext = await newContext(t);
    const device = await deviceContext.newPage();

    const popupReject = await signInOnDevice(popup, approval.approval_url, DEMO_USERS.manager2, "reject");
    const deviceApprove = await signInOnDevice(device, approval.remote_url, DEMO_USERS.manager);

    await decideOnDevice(device, deviceApprove);
    const second = await clickDecision(popup, popupReject);

    assert.equal(second.status, 409);
    const error = await readErrorPage(popup);
    assert.equal(error.code, "already_decided");
    assert.equal(error.retryUrl, null);

    assert.equal(await settledRefundStatus(page), "Refund of order 1002 executed, approved by Maria Manager (manager)");
    const status = await stack.countersign.api.status(approval.id);
    assert.equal(status.body.status, "approved");
    assert.equal(status.body.approver?.username, "manager");
    assert.deepEqual(await sessionClients("manager"), []);
    assert.deepEqual(await sessionClients("manager2"), []);
  });
});
