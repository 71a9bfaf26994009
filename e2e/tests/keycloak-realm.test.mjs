// Checks the demo realm and the host-name split on the real Keycloak, with
// stub servers in place of the shop and Countersign.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser } from "../lib/browser.mjs";
import { DEMO_CLIENTS, DEMO_USERS, realmUrl, signInAtKeycloak } from "../lib/keycloak.mjs";
import { authorizationUrl, createPkce, decodeJwt, endSessionUrl, exchangeCode, randomToken, refreshTokens } from "../lib/oidc.mjs";
import { startStack } from "../lib/stack.mjs";
import { startStubServer } from "../lib/stub-server.mjs";

let stack;
let browser;
const stubs = [];

before(async () => {
  stack = await startStack({ countersign: false, shop: false, name: "keycloak-realm" });
  stubs.push(await startStubServer(stack.ports.shop), await startStubServer(stack.ports.countersign));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const stub of stubs) await stub.close();
  await stack?.stop();
});

/**
 * Runs the code flow in `page` for `client` under `host` and returns the
 * token response. Signs `user` in when Keycloak shows the login form.
 */
async function codeFlow(page, { host, client, redirectUri, user, extra = {} }) {
  const issuer = realmUrl(host, stack.keycloak.port);
  const pkce = createPkce();
  await page.goto(
    authorizationUrl({
      issuer,
      clientId: client.clientId,
      redirectUri,
      state: randomToken(),
      nonce: randomToken(),
      codeChallenge: pkce.challenge,
      scope: "openid profile email",
      extra,
    }),
  );
  if (user && !page.url().startsWith(redirectUri)) {
    await signInAtKeycloak(page, user);
  }
  const url = new URL(page.url());
  assert.ok(url.href.startsWith(redirectUri), `expected a redirect to ${redirectUri}, browser is at ${url.href}`);
  const code = url.searchParams.get("code");
  assert.ok(code, `no code in ${url.href} (error ${url.searchParams.get("error")})`);
  const tokens = await exchangeCode({ issuer, clientId: client.clientId, clientSecret: client.secret, code, redirectUri, codeVerifier: pkce.verifier });
  assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
  return tokens.body;
}

describe("demo realm", () => {
  test("countersign access token claims", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const tokens = await codeFlow(page, {
      host: "127.0.0.1",
      client: DEMO_CLIENTS.countersign,
      redirectUri: `${stack.urls.countersign}/popup/callback`,
      user: DEMO_USERS.manager,
      extra: { prompt: "login", max_age: 0 },
    });
    const accessToken = decodeJwt(tokens.access_token);
    const idToken = decodeJwt(tokens.id_token);

    assert.equal(accessToken.iss, stack.keycloak.countersignIssuer);
    assert.ok([].concat(accessToken.aud).includes("countersign"), `aud ${JSON.stringify(accessToken.aud)}`);
    assert.equal(accessToken.azp, "countersign");
    assert.equal(accessToken.exp - accessToken.iat, 60);
    assert.ok(accessToken.realm_access.roles.includes("MANAGER"));
    assert.equal(idToken.preferred_username, "manager");
    assert.equal(idToken.name, "Maria Manager");
    assert.equal(idToken.acr, "1");
    await context.close();
    await stack.admin.signOutUser("manager");
  });

  test("countersign client requires PKCE", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const redirectUri = `${stack.urls.countersign}/popup/callback`;
    await page.goto(
      authorizationUrl({
        issuer: stack.keycloak.countersignIssuer,
        clientId: DEMO_CLIENTS.countersign.clientId,
        redirectUri,
        state: randomToken(),
        nonce: randomToken(),
      }),
    );
    const url = new URL(page.url());
    assert.ok(url.href.startsWith(redirectUri), `browser is at ${url.href}`);
    assert.equal(url.searchParams.get("error"), "invalid_request");
    assert.match(url.searchParams.get("error_description") ?? "", /code_challenge/);
    await context.close();
  });

  test("users have their realm roles", async () => {
    for (const user of Object.values(DEMO_USERS)) {
      const found = await stack.admin.findUser(user.username);
      const roles = await stack.admin.request("GET", `/users/${found.id}/role-mappings/realm/composite`);
      const names = roles.map((role) => role.name);
      for (const role of ["MANAGER", "CASHIER"]) {
        assert.equal(names.includes(role), user.role === role, `${user.username} and ${role}: ${names.join(", ")}`);
      }
      assert.equal(`${found.firstName} ${found.lastName}`, user.name);
    }
  });
});

describe("host-name split", () => {
  test("sessions stay apart, logout ends one", async () => {
    await stack.admin.signOutUser("cashier");
    await stack.admin.signOutUser("manager");
    const context = await browser.newContext();
    const page = await context.newPage();
    const shopRedirectUri = `${stack.urls.shop}/callback`;

    const cashierTokens = await codeFlow(page, {
      host: "localhost",
      client: DEMO_CLIENTS.shop,
      redirectUri: shopRedirectUri,
      user: DEMO_USERS.cashier,
    });
    const managerTokens = await codeFlow(page, {
      host: "127.0.0.1",
      client: DEMO_CLIENTS.countersign,
      redirectUri: `${stack.urls.countersign}/popup/callback`,
      user: DEMO_USERS.manager,
      extra: { prompt: "login", max_age: 0 },
    });
    assert.equal(decodeJwt(managerTokens.id_token).preferred_username, "manager");
    assert.equal((await stack.admin.userSessions("cashier")).length, 1);
    assert.equal((await stack.admin.userSessions("manager")).length, 1);

    const state = randomToken();
    await page.goto(
      endSessionUrl({
        issuer: stack.keycloak.countersignIssuer,
        idTokenHint: managerTokens.id_token,
        postLogoutRedirectUri: `${stack.urls.countersign}/popup/signed-out`,
        state,
      }),
    );
    const afterLogout = new URL(page.url());
    assert.equal(`${afterLogout.origin}${afterLogout.pathname}`, `${stack.urls.countersign}/popup/signed-out`);
    assert.equal(afterLogout.searchParams.get("state"), state);
    assert.equal((await stack.admin.userSessions("manager")).length, 0);
    assert.equal((await stack.admin.userSessions("cashier")).length, 1);

    const refreshed = await refreshTokens({
      issuer: stack.keycloak.shopIssuer,
      clientId: DEMO_CLIENTS.shop.clientId,
      clientSecret: DEMO_CLIENTS.shop.secret,
      refreshToken: cashierTokens.refresh_token,
    });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(decodeJwt(refreshed.body.access_token).preferred_username, "cashier");

    const silent = await codeFlow(page, {
      host: "localhost",
      client: DEMO_CLIENTS.shop,
      redirectUri: shopRedirectUri,
      extra: { prompt: "none" },
    });
    assert.equal(decodeJwt(silent.id_token).preferred_username, "cashier");
    await context.close();
  });
});
