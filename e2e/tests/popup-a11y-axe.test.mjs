// Accessibility of Countersign's popup pages, checked with axe-core in
// Chromium after a real sign-in at Keycloak: the decision page (English and
// German), the not_an_approver error page and the result page. Each check
// prints a line `axe <page>: N rules checked, ...` with axe's counts.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import { launchBrowser } from "../lib/browser.mjs";
import { refundApprovalRequest } from "../lib/countersign.mjs";
import { DEMO_USERS, signInAtKeycloak } from "../lib/keycloak.mjs";
import { startStack } from "../lib/stack.mjs";

const require = createRequire(import.meta.url);
const AXE_SCRIPT = require.resolve("axe-core/axe.min.js");

/** The axe-core rule tags checked: WCAG 2.0, 2.1 and 2.2 levels A and AA, and axe's best practices. */
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"];

let stack;
let browser;

before(async () => {
  stack = await startStack({ name: "popup-a11y-axe", shop: false });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/**
 * Creates a browser context that is closed when test `t` ends. The pages'
 * Content-Security-Policy only lets nonce-tagged scripts run, so the
 * context bypasses it to inject axe-core.
 */
async function newContext(t, options = {}) {
  const context = await browser.newContext({ bypassCSP: true, ...options });
  t.after(() => context.close());
  return context;
}

/** Creates an approval request through the host API and returns its create response. */
async function createApproval() {
  const request = refundApprovalRequest({
    order: "3001",
    requester: { sub: "a11y-requester-sub", name: "Rita Requester" },
    origin: stack.urls.shop,
  });
  const created = await stack.countersign.api.create(request);
  assert.equal(created.status, 201, `creating the approval request failed: ${JSON.stringify(created.body)}`);
  return created.body;
}

/**
 * Opens the approval URL in a tab that no script opened, so Chromium keeps
 * it open when the result page calls `window.close()`, and signs `user` in
 * at Keycloak. Returns the page once it shows the decision page or an error
 * page.
 */
async function signInToApproval(context, user) {
  const approval = await createApproval();
  const page = await context.newPage();
  await page.goto(approval.approval_url);
  await signInAtKeycloak(page, user);
  await page.locator("#approve, #error-code").first().waitFor({ state: "visible" });
  return { page, approval };
}

/** Runs axe-core on `page`, prints its counts and returns its results. */
async function runAxe(page, name) {
  await page.addScriptTag({ path: AXE_SCRIPT });
  const results = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags } }), AXE_TAGS);
  const checked = results.passes.length + results.violations.length + results.incomplete.length + results.inapplicable.length;
  console.log(
    `axe ${name}: ${checked} rules checked, ${results.passes.length} passed, ${results.violations.length} violations, ` +
      `${results.incomplete.length} incomplete, ${results.inapplicable.length} inapplicable (axe-core ${results.testEngine.version})`,
  );
  for (const rule of results.incomplete) {
    console.log(`axe ${name}: needs review: ${rule.id} (${rule.nodes.map((node) => node.target.join(" ")).join(", ")})`);
  }
  return results;
}

function describeViolations(violations) {
  return violations
    .map((rule) => `${rule.id} (${rule.impact}): ${rule.help} at ${rule.nodes.map((node) => node.target.join(" ")).join(", ")}`)
    .join("\n");
}

describe("popup accessibility", () => {
  test("decision page has no axe violations", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t);
    const { page } = await signInToApproval(context, DEMO_USERS.manager);

    const results = await runAxe(page, "decision page (en)");

    assert.deepEqual(results.violations, [], describeViolations(results.violations));
    assert.equal(await page.getAttribute("html", "lang"), "en");
  });

  test("German decision page has no axe violations", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t, { extraHTTPHeaders: { "Accept-Language": "de" } });
    const { page } = await signInToApproval(context, DEMO_USERS.manager);

    const results = await runAxe(page, "decision page (de)");

    assert.deepEqual(results.violations, [], describeViolations(results.violations));
    assert.equal(await page.getAttribute("html", "lang"), "de");
  });

  test("error page has no axe violations", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t);
    const { page } = await signInToApproval(context, DEMO_USERS.clerk);
    assert.equal((await page.locator("#error-code").innerText()).trim(), "not_an_approver");

    const results = await runAxe(page, "error page not_an_approver (en)");

    assert.deepEqual(results.violations, [], describeViolations(results.violations));
    assert.equal(await page.locator("h1").count(), 1, "the error page has one main heading");
  });

  test("result page has no axe violations", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t);
    const { page, approval } = await signInToApproval(context, DEMO_USERS.manager);
    await Promise.all([page.waitForURL((url) => url.pathname === "/popup/decision"), page.locator("#approve").click()]);
    assert.equal(page.isClosed(), false, "the result page closed itself; it cannot be checked in this tab");

    const results = await runAxe(page, "result page (en)");

    assert.deepEqual(results.violations, [], describeViolations(results.violations));
    assert.equal((await page.locator("h1").innerText()).trim(), "Request approved");
    assert.equal((await stack.countersign.api.status(approval.id)).body.status, "approved");
  });
});
