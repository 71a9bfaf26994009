// Keyboard-only use of Countersign's popup pages after a real sign-in at
// Keycloak: the tab order and focus ring of the decision page, an approval
// with a reason made only with key presses, and the retry link of an error
// page.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser } from "../lib/browser.mjs";
import { refundApprovalRequest } from "../lib/countersign.mjs";
import { DEMO_USERS, signInAtKeycloak } from "../lib/keycloak.mjs";
import { startStack } from "../lib/stack.mjs";

let stack;
let browser;

before(async () => {
  stack = await startStack({ name: "popup-a11y-keyboard", shop: false });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

async function newContext(t) {
  const context = await browser.newContext();
  t.after(() => context.close());
  return context;
}

/** Creates an approval request, opens it in a new tab and signs `user` in at Keycloak. */
async function signInToApproval(context, user) {
  const request = refundApprovalRequest({
    order: "3002",
    requester: { sub: "keyboard-requester-sub", name: "Rita Requester" },
    origin: stack.urls.shop,
  });
  const created = await stack.countersign.api.create(request);
  assert.equal(created.status, 201, `creating the approval request failed: ${JSON.stringify(created.body)}`);
  const page = await context.newPage();
  await page.goto(created.body.approval_url);
  await signInAtKeycloak(page, user);
  await page.locator("#approve, #error-code").first().waitFor({ state: "visible" });
  return { page, approval: created.body };
}

/** Returns the id (or tag name) of the focused element. */
function focusedElement(page) {
  return page.evaluate(() => {
    const element = document.activeElement;
    return element?.id || element?.tagName.toLowerCase() || null;
  });
}

/** Returns the computed outline of the focused element, e.g. `solid 3px`. */
function focusedOutline(page) {
  return page.evaluate(() => {
    const style = getComputedStyle(document.activeElement);
    return `${style.outlineStyle} ${style.outlineWidth}`;
  });
}

describe("popup keyboard use", () => {
  test("manager approves with the keyboard only", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t);
    const { page, approval } = await signInToApproval(context, DEMO_USERS.manager);

    const order = [];
    for (let i = 0; i < 3; i += 1) {
      await page.keyboard.press("Tab");
      order.push(await focusedElement(page));
    }
    assert.deepEqual(order, ["reason", "approve", "reject"], "tab order of the decision page");
    assert.equal(await focusedOutline(page), "solid 3px", "the focused Reject button shows a focus ring");

    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Shift+Tab");
    assert.equal(await focusedElement(page), "reason");
    await page.keyboard.type("checked at the till");
    await page.keyboard.press("Tab");
    assert.equal(await focusedElement(page), "approve");
    assert.equal(await focusedOutline(page), "solid 3px", "the focused Approve button shows a focus ring");

    const isDecision = (response) => response.request().method() === "POST" && new URL(response.url()).pathname === "/popup/decision";
    const [response] = await Promise.all([page.waitForResponse(isDecision), page.keyboard.press("Enter")]);

    assert.equal(response.status(), 200);
    assert.equal((await page.locator("h1").innerText()).trim(), "Request approved");
    const status = await stack.countersign.api.status(approval.id);
    assert.equal(status.body.status, "approved");
    assert.equal(status.body.reason, "checked at the till");
    assert.equal(status.body.approver?.username, "manager");
  });

  test("retry link of an error page works by keyboard", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t);
    const { page, approval } = await signInToApproval(context, DEMO_USERS.clerk);
    assert.equal((await page.locator("#error-code").innerText()).trim(), "not_an_approver");

    await page.keyboard.press("Tab");

    assert.equal(await focusedElement(page), "try-again", "the retry link is the first stop");
    assert.equal(await focusedOutline(page), "solid 3px", "the focused retry link shows a focus ring");
    await Promise.all([page.waitForURL((url) => url.pathname.includes("/protocol/openid-connect/")), page.keyboard.press("Enter")]);
    await page.locator("#username").waitFor({ state: "visible" });
    assert.equal((await stack.countersign.api.status(approval.id)).body.status, "pending");
  });
});
