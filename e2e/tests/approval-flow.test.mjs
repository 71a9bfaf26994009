// The whole approval flow through the demo shop, Countersign's popup and the
// real Keycloak, in one browser: the cashier requests a refund, a manager
// approves or rejects it in the popup, and the cashier is still the cashier
// afterwards. The host API tests check the consume rules and expiry.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { launchBrowser, visibleText } from "../lib/browser.mjs";
import { CountersignApi, approvalPayload, refundApprovalRequest } from "../lib/countersign.mjs";
import { DEMO_USERS, signInAtKeycloak } from "../lib/keycloak.mjs";
import { freePort } from "../lib/ports.mjs";
import { decideInPopup, readErrorPage, requestRefund, shopRefundPayload, shopWhoami, signInToShop } from "../lib/shop.mjs";
import { startStack } from "../lib/stack.mjs";
import { startStubServer } from "../lib/stub-server.mjs";

/** Shortest lifetime Countersign accepts (`MIN_LIFETIME_SECONDS` in crates/countersign/src/approvals/service.rs). */
const SHORTEST_LIFETIME_SECONDS = 30;
const KEYCLOAK_SESSION_COOKIES = ["KEYCLOAK_IDENTITY", "KEYCLOAK_SESSION"];
/** Time that a forged message gets to have an effect before the test checks that it had none. */
const FORGED_MESSAGE_GRACE_MS = 2_000;

let stack;
let browser;
// A request with the shortest lifetime, created before all tests so that it
// expires while they run. The expiry test, the last one in this file, checks it.
let expiring;

before(async () => {
  stack = await startStack({ name: "approval-flow" });
  browser = await launchBrowser();

  const request = refundApprovalRequest({
    order: "2001",
    requester: { sub: "expiry-requester-sub", name: "Erin Requester" },
    origin: shopOrigin(),
    lifetime_seconds: SHORTEST_LIFETIME_SECONDS,
  });
  const created = await stack.countersign.api.create(request);
  assert.equal(created.status, 201, `creating the short-lived request failed: ${JSON.stringify(created.body)}`);
  expiring = { request, created: created.body };
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

// Each browser test calls this first. A beforeEach hook would also run before
// the subtests, which continue right where their parent test stopped.
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

/** Returns the client ids of each Keycloak session of `username`, one array per session. */
async function sessionClients(username) {
  const sessions = await stack.admin.userSessions(username);
  return sessions.map((session) => Object.values(session.clients ?? {}).sort());
}

/**
 * Checks that `page`, after its last navigation, shows Keycloak's login form
 * of the demo realm under Countersign's host name, with an empty, editable
 * user name field: no silent sign-in and no re-authentication form for a
 * known user.
 */
async function assertFreshLoginForm(page) {
  await page.waitForLoadState("domcontentloaded");
  const url = new URL(page.url());
  assert.equal(url.origin, keycloakOrigin(), `expected Keycloak's login form, the popup is at ${url.href}: ${await visibleText(page)}`);
  assert.ok(url.pathname.startsWith("/realms/countersign-demo/"), `unexpected Keycloak page ${url.href}`);

  const username = page.locator("#username");
  await username.waitFor({ state: "visible" });
  assert.equal(await username.inputValue(), "", "the user name field must be empty");
  assert.equal(await username.isEditable(), true, "the user name field must be editable");
  assert.equal(await page.locator("#password").inputValue(), "", "the password field must be empty");
  assert.equal(await page.locator("#kc-attempted-username").count(), 0, "Keycloak showed the re-authentication form of a known user");
  assert.doesNotMatch(await visibleText(page), /re-authenticate/i);
}

describe("approval flow", () => {
  test("manager approves a refund", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t);
    const page = await context.newPage();
    await signInToShop(page, stack.shop.url, DEMO_USERS.cashier);

    const { popup, approval } = await requestRefund(page, "1001");
    const { clickedAt } = await decideInPopup(popup, DEMO_USERS.manager, { decision: "approve" });

    assert.equal(await settledRefundStatus(page), "Refund of order 1001 executed, approved by Maria Manager (manager)");
    assert.equal(await page.locator("#order-status-1001").innerText(), "refunded");

    const resolvedAt = await page.evaluate(() => window.__countersignTimes?.resolvedAt);
    assert.equal(typeof resolvedAt, "number", "the shop did not record when the SDK promise settled");
    const approveToResolveMs = resolvedAt - clickedAt;
    console.log(`approve-to-resolve-ms: ${approveToResolveMs}`);
    assert.ok(approveToResolveMs >= 0, `the SDK promise settled ${-approveToResolveMs} ms before the click on Approve`);

    assert.deepEqual(await sessionClients("manager"), [], "the manager's Keycloak session must be ended");

    const cookies = await context.cookies();
    const describeCookie = (cookie) => `${cookie.name} (${cookie.domain}${cookie.path})`;
    assert.deepEqual(cookies.filter((cookie) => cookie.name === "countersign_login").map(describeCookie), [], "the login cookie must be cleared");
    const keycloakCookiesOf = (domain) =>
      cookies.filter((cookie) => cookie.domain === domain && KEYCLOAK_SESSION_COOKIES.includes(cookie.name));
    assert.deepEqual(keycloakCookiesOf("127.0.0.1").map(describeCookie), [], "Keycloak's session cookies of the approval sign-in must be gone");
    // The cashier's cookies under the shop's host name stay, which shows that
    // the check above looks at a cookie jar that does contain Keycloak cookies.
    assert.deepEqual(keycloakCookiesOf("localhost").map((cookie) => cookie.name).sort(), [...KEYCLOAK_SESSION_COOKIES].sort());

    const whoami = await shopWhoami(page, stack.shop.url, { refresh: true });
    assert.equal(whoami.status, 200, JSON.stringify(whoami.body));
    assert.equal(whoami.body.username, "cashier");
    assert.deepEqual(await sessionClients("cashier"), [["demo-shop"]], "the cashier's Keycloak session must stay");

    await t.test("second consume of the shop's approval fails", async () => {
      const cashier = await stack.admin.findUser("cashier");
      const payload = shopRefundPayload("1001", { sub: cashier.id, name: DEMO_USERS.cashier.name });

      const byPayload = await stack.countersign.api.consume(approval.id, { payload });
      assert.equal(byPayload.status, 409, JSON.stringify(byPayload.body));
      assert.equal(byPayload.body.code, "already_consumed");
      assert.match(byPayload.headers.get("content-type"), /^application\/problem\+json/);

      const byHash = await stack.countersign.api.consume(approval.id, { payload_hash: approval.payload_hash });
      assert.equal(byHash.status, 409, JSON.stringify(byHash.body));
      assert.equal(byHash.body.code, "already_consumed");

      const status = await stack.countersign.api.status(approval.id);
      assert.equal(status.body.status, "approved");
      assert.equal(status.body.consumed, true);
    });

    await t.test("next approval asks for a password", async () => {
      const { popup: nextPopup } = await requestRefund(page, "1002");
      // The popup opens on about:blank, then the SDK sends it to the approval URL.
      await nextPopup.waitForURL((url) => url.protocol === "http:");
      await assertFreshLoginForm(nextPopup);

      await decideInPopup(nextPopup, DEMO_USERS.manager, { decision: "approve" });
      assert.equal(await settledRefundStatus(page), "Refund of order 1002 executed, approved by Maria Manager (manager)");
      assert.deepEqual(await sessionClients("manager"), []);
    });
  });

  test("manager rejects a refund", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t);
    const page = await context.newPage();
    await signInToShop(page, stack.shop.url, DEMO_USERS.cashier);

    const { popup, approval } = await requestRefund(page, "1002");
    await decideInPopup(popup, DEMO_USERS.manager2, { decision: "reject", reason: "receipt missing" });

    assert.equal(await settledRefundStatus(page), "Refund of order 1002 refused: rejected by Max Manager (manager2): receipt missing");
    assert.equal(await page.locator("#order-status-1002").innerText(), "paid");
    await page.reload();
    assert.equal(await page.locator("#order-status-1002").innerText(), "paid", "the shop must not record a refund after a rejection");

    const status = await stack.countersign.api.status(approval.id);
    assert.equal(status.body.status, "rejected");
    assert.equal(status.body.reason, "receipt missing");
    assert.equal(status.body.approver?.username, "manager2");

    const whoami = await shopWhoami(page, stack.shop.url, { refresh: true });
    assert.equal(whoami.body.username, "cashier");
    assert.deepEqual(await sessionClients("manager2"), [], "the manager's Keycloak session must be ended");
  });

  test("clerk is not an approver", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t);
    const page = await context.newPage();
    await signInToShop(page, stack.shop.url, DEMO_USERS.cashier);

    const { popup, approval } = await requestRefund(page, "1003");
    await signInAtKeycloak(popup, DEMO_USERS.clerk);

    const error = await readErrorPage(popup);
    assert.equal(error.code, "not_an_approver");
    assert.equal(error.title, "Not allowed to approve");
    assert.equal(
      error.message,
      "The account you signed in with does not hold the role this request needs. Ask someone who holds it to sign in.",
    );
    assert.equal(error.retryUrl, `${stack.countersign.url}/popup/start/${approval.id}`);
    assert.match(await visibleText(popup), /Try again/);
    assert.deepEqual(await sessionClients("clerk"), [], "the clerk's Keycloak session must be ended");
    assert.equal((await stack.countersign.api.status(approval.id)).body.status, "pending");
    assert.equal(await page.locator("#refund-status").innerText(), "waiting");

    await Promise.all([
      popup.waitForEvent("framenavigated", { predicate: (frame) => frame === popup.mainFrame() }),
      popup.click("a#try-again"),
    ]);
    await assertFreshLoginForm(popup);
    await decideInPopup(popup, DEMO_USERS.manager, { decision: "approve" });

    assert.equal(await settledRefundStatus(page), "Refund of order 1003 executed, approved by Maria Manager (manager)");
    assert.equal(await page.locator("#order-status-1003").innerText(), "refunded");
    assert.deepEqual(await sessionClients("manager"), []);
  });

  test("own request is rejected", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t);
    const page = await context.newPage();
    await signInToShop(page, stack.shop.url, DEMO_USERS.cashier);

    const { popup, approval } = await requestRefund(page, "1001");
    await signInAtKeycloak(popup, DEMO_USERS.cashier);

    const error = await readErrorPage(popup);
    assert.equal(error.code, "own_request");
    assert.equal(error.title, "You cannot approve your own request");
    assert.equal(error.message, "The account you signed in with made this request. Another person has to sign in and approve it.");
    assert.equal(error.retryUrl, `${stack.countersign.url}/popup/start/${approval.id}`);

    const status = await stack.countersign.api.status(approval.id);
    assert.equal(status.body.status, "pending");
    assert.equal(status.body.consumed, false);
    assert.equal(status.body.approver ?? null, null, `no approver may be recorded: ${JSON.stringify(status.body)}`);
    assert.equal(await page.locator("#refund-status").innerText(), "waiting");

    const whoami = await shopWhoami(page, stack.shop.url, { refresh: true });
    assert.equal(whoami.status, 200, JSON.stringify(whoami.body));
    assert.equal(whoami.body.username, "cashier");
    assert.deepEqual(await sessionClients("cashier"), [["demo-shop"]], "only the cashier's shop session may be left");
  });

  test("forged result message is ignored", async (t) => {
    await stack.admin.signOutDemoUsers();
    const forger = await startStubServer(await freePort());
    t.after(() => forger.close());
    const context = await newContext(t);
    const signInPage = await context.newPage();
    await signInToShop(signInPage, stack.shop.url, DEMO_USERS.cashier);

    // A page of another origin opens the shop, so it holds a reference to the shop's window.
    const forgerPage = await context.newPage();
    await forgerPage.goto(forger.url);
    const [shopPage] = await Promise.all([
      forgerPage.waitForEvent("popup"),
      forgerPage.evaluate((shopUrl) => {
        window.shopWindow = window.open(shopUrl, "shop");
      }, stack.shop.url),
    ]);
    await shopPage.locator("#signed-in-as").filter({ hasText: "cashier" }).waitFor();

    const executeRequests = [];
    shopPage.on("request", (request) => {
      if (new URL(request.url()).pathname.endsWith("/execute")) executeRequests.push(request.url());
    });
    // Records every message the shop window receives, to prove that the forged ones arrive.
    await shopPage.evaluate(() => {
      window.__receivedMessages = [];
      window.addEventListener("message", (event) => window.__receivedMessages.push({ origin: event.origin, data: event.data }));
    });

    const { popup, approval } = await requestRefund(shopPage, "1001");
    // The SDK listens for messages from the moment it sends the popup to the
    // approval URL, so the login form in the popup means it is listening.
    await popup.locator("#username").waitFor({ state: "visible" });

    const forged = ["approved", "rejected"].map((status) => ({ type: "countersign:result", id: approval.id, status }));
    await forgerPage.evaluate((messages) => {
      for (const message of messages) window.shopWindow.postMessage(message, "*");
    }, forged);
    await shopPage.waitForFunction((count) => window.__receivedMessages.length >= count, forged.length);
    await sleep(FORGED_MESSAGE_GRACE_MS);

    const received = await shopPage.evaluate(() => window.__receivedMessages);
    assert.deepEqual(
      received,
      forged.map((data) => ({ origin: forger.url, data })),
      "the forged messages must reach the shop's window, else this test checks nothing",
    );
    assert.equal(await shopPage.locator("#refund-status").innerText(), "waiting", "a forged message settled the refund");
    assert.deepEqual(executeRequests, [], "a forged message made the shop call execute");
    assert.equal(await shopPage.evaluate(() => window.__countersignTimes ?? null), null, "a forged message settled the SDK promise");
    assert.equal((await stack.countersign.api.status(approval.id)).body.status, "pending");

    await decideInPopup(popup, DEMO_USERS.manager, { decision: "approve" });
    assert.equal(await settledRefundStatus(shopPage), "Refund of order 1001 executed, approved by Maria Manager (manager)");
    assert.equal(executeRequests.length, 1, `expected one execute call: ${executeRequests.join(", ")}`);
  });
});

describe("host API", () => {
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

  test("consume with another payload fails", async (t) => {
    await stack.admin.signOutDemoUsers();
    const api = stack.countersign.api;
    const request = refundApprovalRequest({
      order: "3001",
      requester: { sub: "api-requester-sub", name: "Alex Requester" },
      origin: shopOrigin(),
    });
    const created = await api.create(request);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;

    // The popup opens from a page of the registered origin, as the SDK would open it.
    const context = await newContext(t);
    const page = await context.newPage();
    await page.goto(stack.shop.url);
    const [popup] = await Promise.all([
      page.waitForEvent("popup"),
      page.evaluate((url) => {
        window.open(url, "countersign", "popup,width=480,height=640");
      }, created.body.approval_url),
    ]);
    await decideInPopup(popup, DEMO_USERS.manager, { decision: "approve" });
    const decided = await api.waitForDecision(id);
    assert.equal(decided.body.status, "approved", JSON.stringify(decided.body));

    const changed = approvalPayload({ ...request, details: { ...request.details, amount: "59.90" } });
    const mismatch = await api.consume(id, { payload: changed });
    assert.equal(mismatch.status, 422, JSON.stringify(mismatch.body));
    assert.equal(mismatch.body.code, "payload_mismatch");
    assert.match(mismatch.headers.get("content-type"), /^application\/problem\+json/);

    const afterMismatch = await api.status(id);
    assert.equal(afterMismatch.body.status, "approved");
    assert.equal(afterMismatch.body.consumed, false, "a consume with another payload must not use up the approval");

    const consumed = await api.consume(id, { payload: approvalPayload(request) });
    assert.equal(consumed.status, 200, JSON.stringify(consumed.body));
    assert.equal(consumed.body.decision, "approved");
    assert.equal(consumed.body.approver?.username, "manager");
    assert.equal(consumed.body.approver?.name, "Maria Manager");
    assert.equal(consumed.body.payload_hash, created.body.payload_hash);
    assert.ok(consumed.body.consumed_at, `no consumed_at in ${JSON.stringify(consumed.body)}`);

    const again = await api.consume(id, { payload: approvalPayload(request) });
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.code, "already_consumed");
    assert.equal((await api.status(id)).body.consumed, true);
    assert.deepEqual(await sessionClients("manager"), []);
  });
});

// Last in this file: it waits for the request created in `before`, whose
// lifetime has mostly run out while the tests above ran.
describe("expiry", () => {
  test("expired request is rejected", async (t) => {
    const { request, created } = expiring;
    // Countersign stores whole seconds, so wait a little past expires_at.
    const waitMs = Date.parse(created.expires_at) - Date.now() + 1_500;
    if (waitMs > 0) {
      await sleep(waitMs);
    }

    const context = await newContext(t);
    const page = await context.newPage();
    await page.goto(created.approval_url);
    const error = await readErrorPage(page);
    assert.equal(new URL(page.url()).origin, stack.countersign.url, "an expired request must not send the browser to Keycloak");
    assert.equal(error.code, "approval_expired");
    assert.equal(error.title, "Request expired");
    assert.equal(error.message, "This approval request has expired. Ask for a new one in the application.");
    assert.equal(error.retryUrl, null, "an expired request must not offer a retry");
    assert.match(await visibleText(page), /You can close this window\./);

    const consumed = await stack.countersign.api.consume(created.id, { payload: approvalPayload(request) });
    assert.equal(consumed.status, 410, JSON.stringify(consumed.body));
    assert.equal(consumed.body.code, "approval_expired");
    assert.match(consumed.headers.get("content-type"), /^application\/problem\+json/);

    const status = await stack.countersign.api.status(created.id);
    assert.equal(status.body.status, "expired");
    assert.equal(status.body.consumed, false);
  });
});
