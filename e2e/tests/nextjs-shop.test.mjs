// The Next.js example (examples/nextjs-shop) against the real Keycloak and
// Countersign: the cashier signs in through NextAuth.js, the page requests
// the approval with the React hook, and the app's route handlers create and
// consume it with the API key.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser } from "../lib/browser.mjs";
import { DEMO_USERS } from "../lib/keycloak.mjs";
import { refundStatus, requestNextjsRefund, signInToNextjsShop, startNextjsStack } from "../lib/nextjs.mjs";
import { decideInPopup } from "../lib/shop.mjs";

let stack;
let browser;

before(async () => {
  stack = await startNextjsStack();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Opens a new browser context with the cashier signed in and returns `{ context, page, bodies }`. */
async function cashierPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Every text response of the app, to check that the API key never reaches the browser.
  const bodies = [];
  page.on("response", (response) => {
    if (!response.url().startsWith(stack.nextjs.url)) return;
    bodies.push(response.text().catch(() => ""));
  });
  await signInToNextjsShop(page, stack.nextjs.url, DEMO_USERS.cashier);
  return { context, page, bodies };
}

test("refund approved through Next.js shop", async () => {
  const { context, page, bodies } = await cashierPage();
  try {
    const { popup, approval } = await requestNextjsRefund(page, "1001");
    assert.equal(new URL(approval.approval_url).origin, stack.countersign.url);
    assert.equal(approval.payload_hash, undefined);

    await decideInPopup(popup, DEMO_USERS.manager, { decision: "approve" });

    const status = await refundStatus(page, "1001", "executed");
    assert.equal(status, "Refund of order 1001 executed, approved by Maria Manager (manager)");

    const atCountersign = await stack.countersign.api.status(approval.id);
    assert.equal(atCountersign.body.status, "approved");
    assert.equal(atCountersign.body.consumed, true);
    assert.equal(atCountersign.body.approver.name, "Maria Manager");

    await page.reload();
    await page.locator("#signed-in-as").waitFor();
    assert.equal(await page.locator("button#refund-1001").isDisabled(), true);
    assert.equal(await refundStatus(page, "1001", "Refunded"), "Refunded, approved by Maria Manager (manager)");

    const texts = await Promise.all(bodies);
    assert.ok(texts.length > 0);
    assert.equal(texts.filter((text) => text.includes(stack.countersign.apiKey)).length, 0);
  } finally {
    await context.close();
  }
});

test("rejection shows approver and reason", async () => {
  const { context, page } = await cashierPage();
  try {
    const { popup } = await requestNextjsRefund(page, "1002");
    await decideInPopup(popup, DEMO_USERS.manager, { decision: "reject", reason: "customer kept the goods" });

    const status = await refundStatus(page, "1002", "refused");
    assert.equal(status, "Refund of order 1002 refused: rejected by Maria Manager (manager): customer kept the goods");
    assert.equal(await page.locator("button#refund-1002").isDisabled(), false);
  } finally {
    await context.close();
  }
});

test("route handlers reject foreign requests", async () => {
  const { context, page } = await cashierPage();
  try {
    const api = context.request;
    const url = stack.nextjs.url;

    const crossOrigin = await api.post(`${url}/api/refunds/1003/approval`, { headers: { origin: "http://localhost:1" } });
    assert.equal(crossOrigin.status(), 403);

    const unknownApproval = await api.post(`${url}/api/refunds/1003/execute`, {
      headers: { origin: url },
      data: { approval_id: "not-requested-here" },
    });
    assert.equal(unknownApproval.status(), 404);

    const unknownOrder = await api.post(`${url}/api/refunds/9999/approval`, { headers: { origin: url } });
    assert.equal(unknownOrder.status(), 404);

    const signedOut = await browser.newContext();
    try {
      const anonymous = await signedOut.request.post(`${url}/api/refunds/1003/approval`, { headers: { origin: url } });
      assert.equal(anonymous.status(), 401);
    } finally {
      await signedOut.close();
    }
    assert.equal(page.isClosed(), false);
  } finally {
    await context.close();
  }
});
