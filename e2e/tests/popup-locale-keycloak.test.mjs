// The language of Countersign's popup with the real Keycloak: the browser's
// Accept-Language and the host's `locale` parameter choose the pages'
// language and the `ui_locales` that Countersign sends to Keycloak.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser } from "../lib/browser.mjs";
import { refundApprovalRequest } from "../lib/countersign.mjs";
import { DEMO_USERS, signInAtKeycloak } from "../lib/keycloak.mjs";
import { readErrorPage } from "../lib/shop.mjs";
import { startStack } from "../lib/stack.mjs";

let stack;
let browser;

before(async () => {
  stack = await startStack({ name: "popup-locale-keycloak", shop: false });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Creates a browser context that sends `acceptLanguage` and is closed when test `t` ends. */
async function newContext(t, acceptLanguage) {
  const context = await browser.newContext({ extraHTTPHeaders: { "Accept-Language": acceptLanguage } });
  t.after(() => context.close());
  return context;
}

/**
 * Creates an approval request and opens its approval URL, with the host
 * locale `locale` when given. Returns the page, the create response and the
 * authorization requests that the page sent to Keycloak (a live list).
 */
async function openApproval(context, { locale } = {}) {
  const request = refundApprovalRequest({
    order: "3003",
    requester: { sub: "locale-requester-sub", name: "Rita Requester" },
    origin: stack.urls.shop,
  });
  const created = await stack.countersign.api.create(request);
  assert.equal(created.status, 201, `creating the approval request failed: ${JSON.stringify(created.body)}`);

  const page = await context.newPage();
  const authorizationRequests = [];
  page.on("request", (sent) => {
    const url = new URL(sent.url());
    if (url.port === String(stack.keycloak.port) && url.pathname.endsWith("/protocol/openid-connect/auth")) {
      authorizationRequests.push(url);
    }
  });
  const url = new URL(created.body.approval_url);
  if (locale) {
    url.searchParams.set("locale", locale);
  }
  await page.goto(url.href);
  await page.locator("#username").waitFor({ state: "visible" });
  return { page, approval: created.body, authorizationRequests };
}

/** Signs `user` in at Keycloak and waits for the decision page or an error page. */
async function signIn(page, user) {
  await signInAtKeycloak(page, user);
  await page.locator("#approve, #error-code").first().waitFor({ state: "visible" });
}

function uiLocales(authorizationRequests) {
  assert.equal(authorizationRequests.length, 1, `expected one authorization request: ${authorizationRequests.join(", ")}`);
  return authorizationRequests[0].searchParams.get("ui_locales");
}

describe("popup locale", () => {
  test("Accept-Language de gives German pages", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t, "de");
    const { page, approval, authorizationRequests } = await openApproval(context);

    assert.equal(uiLocales(authorizationRequests), "de");
    // NOTE: the demo realm has internationalization off, so Keycloak shows
    // its login form in English whatever ui_locales requests.
    console.log(`keycloak login page lang: ${await page.getAttribute("html", "lang")}`);

    await signIn(page, DEMO_USERS.manager);

    assert.equal(await page.getAttribute("html", "lang"), "de");
    assert.equal(await page.title(), "Diese Anfrage genehmigen? · Countersign");
    assert.equal((await page.locator("h1").innerText()).trim(), "Diese Anfrage genehmigen?");
    assert.match(await page.locator("#time-left").innerText(), /^\d+ Minuten? (und \d+ Sekunden? )?\(bis \d\d:\d\d:\d\d UTC\)$/);
    assert.equal((await page.locator("label[for=reason]").innerText()).trim(), "Begründung (optional)");
    assert.equal((await page.locator("#approve").innerText()).trim(), "Genehmigen");
    assert.equal((await page.locator("#reject").innerText()).trim(), "Ablehnen");

    await Promise.all([page.waitForURL((url) => url.pathname === "/popup/decision"), page.locator("#approve").click()]);

    assert.equal(await page.getAttribute("html", "lang"), "de");
    assert.equal((await page.locator("h1").innerText()).trim(), "Anfrage genehmigt");
    assert.equal((await stack.countersign.api.status(approval.id)).body.status, "approved");
  });

  test("host locale fr wins over Accept-Language", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t, "de-DE,de;q=0.9");
    const { page, approval, authorizationRequests } = await openApproval(context, { locale: "fr" });

    assert.equal(uiLocales(authorizationRequests), "fr");

    await signIn(page, DEMO_USERS.manager);

    assert.equal(await page.getAttribute("html", "lang"), "fr");
    assert.equal((await page.locator("h1").innerText()).trim(), "Approuver cette demande\u00a0?");
    assert.equal((await page.locator("#reject").innerText()).trim(), "Refuser");

    await page.fill("#reason", "ticket manquant");
    await Promise.all([page.waitForURL((url) => url.pathname === "/popup/decision"), page.locator("#reject").click()]);

    assert.equal(await page.getAttribute("html", "lang"), "fr");
    assert.equal((await page.locator("h1").innerText()).trim(), "Demande refusée");
    const status = await stack.countersign.api.status(approval.id);
    assert.equal(status.body.status, "rejected");
    assert.equal(status.body.reason, "ticket manquant");
  });

  test("error page keeps host locale es for retry", async (t) => {
    await stack.admin.signOutDemoUsers();
    const context = await newContext(t, "de");
    const { page, approval, authorizationRequests } = await openApproval(context, { locale: "es" });

    await signIn(page, DEMO_USERS.clerk);
    const error = await readErrorPage(page);

    assert.equal(error.code, "not_an_approver");
    assert.equal(await page.getAttribute("html", "lang"), "es");
    assert.equal(error.title, "Sin permiso para aprobar");
    assert.equal(error.retryUrl, `${stack.countersign.url}/popup/start/${approval.id}?locale=es`);

    await Promise.all([page.waitForURL((url) => url.pathname.endsWith("/protocol/openid-connect/auth")), page.locator("#try-again").click()]);

    assert.deepEqual(
      authorizationRequests.map((url) => url.searchParams.get("ui_locales")),
      ["es", "es"],
      "the retry sends the host locale to Keycloak again",
    );
  });
});
