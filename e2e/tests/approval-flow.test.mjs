// The whole approval flow through the demo shop, Countersign's popup and the
// real Keycloak, in one browser: the cashier requests a refund, a manager
// approves or rejects it in the popup, and the cashier is still the cashier
// afterwards.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { launchBrowser } from "../lib/browser.mjs";
import { CountersignApi, refundApprovalRequest } from "../lib/countersign.mjs";
import { DEMO_USERS } from "../lib/keycloak.mjs";
import { decideInPopup, shopWhoami, signInToShop, startRefund } from "../lib/shop.mjs";
import { startStack } from "../lib/stack.mjs";

let stack;
let browser;

before(async () => {
  stack = await startStack({ name: "approval-flow" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

beforeEach(async () => {
  for (const user of ["cashier", "manager", "manager2", "clerk"]) {
    await stack.admin.signOutUser(user);
  }
});

describe("approval flow", () => {
  test("manager approves a refund", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signInToShop(page, stack.shop.url, DEMO_USERS.cashier);

    const popup = await startRefund(page, "1001");
    await decideInPopup(popup, DEMO_USERS.manager, { decision: "approve" });

    await page
      .locator("#refund-status")
      .filter({ hasText: "Refund of order 1001 executed, approved by Maria Manager (manager)" })
      .waitFor({ timeout: 15_000 });

    const whoami = await shopWhoami(page, stack.shop.url, { refresh: true });
    assert.equal(whoami.status, 200, JSON.stringify(whoami.body));
    assert.equal(whoami.body.username, "cashier");
    assert.equal((await stack.admin.userSessions("manager")).length, 0, "the manager's Keycloak session must be ended");
    assert.equal((await stack.admin.userSessions("cashier")).length, 1, "the cashier's Keycloak session must stay");
    await context.close();
  });

  test("manager rejects a refund", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signInToShop(page, stack.shop.url, DEMO_USERS.cashier);

    const popup = await startRefund(page, "1002");
    await decideInPopup(popup, DEMO_USERS.manager2, { decision: "reject", reason: "receipt missing" });

    await page.locator("#refund-status").filter({ hasText: "Refund of order 1002 refused" }).waitFor({ timeout: 15_000 });
    const whoami = await shopWhoami(page, stack.shop.url, { refresh: true });
    assert.equal(whoami.body.username, "cashier");
    assert.equal((await stack.admin.userSessions("manager2")).length, 0);
    await context.close();
  });
});

describe("host API", () => {
  function shopOrigin() {
    return new URL(stack.shop.url).origin;
  }

  test("create returns a pending request", async () => {
    const response = await stack.countersign.api.create(
      refundApprovalRequest({ requester: { sub: "cashier-sub", name: "Carla Cashier" }, origin: shopOrigin() }),
    );
    assert.equal(response.status, 201, JSON.stringify(response.body));
    assert.equal(response.body.status, "pending");
    assert.match(response.body.payload_hash, /^sha256:[0-9a-f]{64}$/);
    assert.ok(response.body.approval_url.startsWith(`${stack.countersign.url}/popup/start/`));

    const status = await stack.countersign.api.status(response.body.id);
    assert.equal(status.status, 200);
    assert.equal(status.body.status, "pending");
    assert.equal(status.body.consumed, false);
  });

  test("consume of a pending request fails", async () => {
    const created = await stack.countersign.api.create(
      refundApprovalRequest({ requester: { sub: "cashier-sub", name: "Carla Cashier" }, origin: shopOrigin() }),
    );
    const consumed = await stack.countersign.api.consume(created.body.id, { payload_hash: created.body.payload_hash });
    assert.equal(consumed.status, 409);
    assert.equal(consumed.body.code, "approval_pending");
    assert.match(consumed.headers.get("content-type"), /application\/problem\+json/);
  });

  test("missing API key is unauthorized", async () => {
    const api = new CountersignApi(stack.countersign.url, null);
    const response = await api.create(refundApprovalRequest({ requester: { sub: "x", name: "X" }, origin: shopOrigin() }));
    assert.equal(response.status, 401);
    assert.equal(response.body.code, "unauthorized");
  });

  test("unregistered origin is rejected", async () => {
    const response = await stack.countersign.api.create(
      refundApprovalRequest({ requester: { sub: "x", name: "X" }, origin: "http://localhost:1" }),
    );
    assert.equal(response.status, 422);
    assert.equal(response.body.code, "origin_not_allowed");
  });
});
