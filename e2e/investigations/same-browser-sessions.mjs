// Records what Keycloak does when a second user of the same realm signs in
// in the same browser, once under the same host name as the first user's
// session and once under another one. docs/keycloak.md reports the results.
//
// Starts Keycloak through scripts/keycloak.sh on free ports (so no other
// Keycloak of this checkout may run) and two stub HTTP servers on 127.0.0.1
// in place of the shop and Countersign, because their redirect URIs only need
// to return a page. Stops all of them at the end.
//
//   node e2e/investigations/same-browser-sessions.mjs
//
// Prints one JSON report on standard output; writes screenshots to
// e2e/results/same-browser/ (or INVESTIGATION_OUT_DIR).
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { launchBrowser, visibleText } from "../lib/browser.mjs";
import { APPROVALS_REALM, DEMO_CLIENTS, DEMO_USERS, KeycloakAdmin, REALM, REPO_DIR, realmUrl, signInAtKeycloak, startKeycloak } from "../lib/keycloak.mjs";
import { authorizationUrl, createPkce, decodeJwt, endSessionUrl, exchangeCode, randomToken, refreshTokens } from "../lib/oidc.mjs";
import { freePorts } from "../lib/ports.mjs";
import { startStubServer } from "../lib/stub-server.mjs";

const [KEYCLOAK_PORT, KEYCLOAK_MANAGEMENT_PORT, SHOP_PORT, COUNTERSIGN_PORT] = await freePorts(4);
const SHOP_URL = `http://localhost:${SHOP_PORT}`;
const COUNTERSIGN_URL = `http://127.0.0.1:${COUNTERSIGN_PORT}`;
const OUT_DIR = process.env.INVESTIGATION_OUT_DIR ?? path.join(REPO_DIR, "e2e/results/same-browser");

const SHOP_REDIRECT_URI = `${SHOP_URL}/callback`;
const COUNTERSIGN_REDIRECT_URI = `${COUNTERSIGN_URL}/popup/callback`;
const COUNTERSIGN_SIGNED_OUT_URI = `${COUNTERSIGN_URL}/popup/signed-out`;

const admin = new KeycloakAdmin(`http://127.0.0.1:${KEYCLOAK_PORT}`);
const approvalsAdmin = new KeycloakAdmin(`http://127.0.0.1:${KEYCLOAK_PORT}`, { realm: APPROVALS_REALM });

/** Summarizes a token response: who it is for, its session, and its error if any. */
function describeTokens(response) {
  if (response.status !== 200) {
    return { httpStatus: response.status, error: response.body.error, errorDescription: response.body.error_description };
  }
  const idToken = decodeJwt(response.body.id_token);
  const accessToken = decodeJwt(response.body.access_token);
  return {
    httpStatus: 200,
    iss: idToken.iss,
    preferredUsername: idToken.preferred_username,
    sid: idToken.sid,
    acr: idToken.acr,
    authTime: idToken.auth_time,
    accessTokenAud: accessToken.aud,
    accessTokenRoles: accessToken.realm_access?.roles ?? [],
    accessTokenLifetimeSeconds: accessToken.exp - accessToken.iat,
  };
}

/** Lists the sessions of the demo users that the scenarios sign in, per realm. */
async function sessionSnapshot() {
  const snapshot = {};
  const accounts = [
    [admin, "cashier"],
    [admin, "manager"],
    [approvalsAdmin, "manager"],
  ];
  for (const [realmAdmin, username] of accounts) {
    const sessions = await realmAdmin.userSessions(username);
    snapshot[`${realmAdmin.realm}/${username}`] = sessions.map((session) => ({
      id: session.id,
      clients: Object.values(session.clients ?? {}),
    }));
  }
  return snapshot;
}

/** Lists the Keycloak cookies that the browser context keeps, per host. */
async function keycloakCookies(context) {
  const cookies = await context.cookies();
  return cookies
    .filter((cookie) => cookie.name.startsWith("KEYCLOAK_") || cookie.name.startsWith("AUTH_SESSION") || cookie.name === "KC_RESTART")
    .map((cookie) => `${cookie.domain}${cookie.path} ${cookie.name}`)
    .sort();
}

/**
 * Starts an authorization request in `page` and, when Keycloak shows the
 * login form, signs in as `user`. Returns where the browser stopped: the
 * redirect URI with `code` or `error`, or a Keycloak page and its text.
 */
async function authorize(page, { host, realm = REALM, client, redirectUri, user, extra = {}, screenshot, restartLogin = false }) {
  const issuer = realmUrl(host, KEYCLOAK_PORT, realm);
  const pkce = createPkce();
  const state = randomToken();
  const url = authorizationUrl({
    issuer,
    clientId: client.clientId,
    redirectUri,
    state,
    nonce: randomToken(),
    codeChallenge: client.clientId === DEMO_CLIENTS.countersign.clientId ? pkce.challenge : undefined,
    scope: "openid profile email",
    extra,
  });
  await page.goto(url);
  const outcome = { request: { host, realm, clientId: client.clientId, ...extra }, loginFormShown: false };

  // With an SSO session on this host, Keycloak's re-authentication form shows
  // the session's user read-only (#kc-attempted-username) and no #username
  // field. Its "Restart login" button (#reset-login) leads to the full form.
  if (!page.url().startsWith(redirectUri) && (await page.locator("#kc-attempted-username").count()) > 0) {
    outcome.reauthenticationFormFor = await page.inputValue("#kc-attempted-username");
    outcome.reauthenticationText = (await visibleText(page)).slice(0, 300);
    if (screenshot) {
      await page.screenshot({ path: path.join(OUT_DIR, `${screenshot}-reauthentication.png`) });
    }
    if (restartLogin) {
      await Promise.all([page.waitForEvent("framenavigated"), page.click("#reset-login")]);
      await page.waitForLoadState("domcontentloaded");
      outcome.afterRestartLoginUrl = page.url().split("?")[0];
    }
  }
  if (!page.url().startsWith(redirectUri) && (await page.locator("#username").count()) > 0) {
    outcome.loginFormShown = true;
    outcome.loginFormUsernamePrefilled = await page.inputValue("#username");
    if (user) {
      await signInAtKeycloak(page, user);
    }
  }

  const finalUrl = new URL(page.url());
  outcome.finalUrl = `${finalUrl.origin}${finalUrl.pathname}`;
  if (page.url().startsWith(redirectUri)) {
    outcome.returnedStateMatches = finalUrl.searchParams.get("state") === state;
    outcome.error = finalUrl.searchParams.get("error") ?? undefined;
    const code = finalUrl.searchParams.get("code");
    if (code) {
      const tokens = await exchangeCode({
        issuer,
        clientId: client.clientId,
        clientSecret: client.secret,
        code,
        redirectUri,
        codeVerifier: client.clientId === DEMO_CLIENTS.countersign.clientId ? pkce.verifier : undefined,
      });
      outcome.tokens = describeTokens(tokens);
      outcome.rawTokens = tokens.body;
    }
  } else {
    outcome.keycloakPageTitle = await page.title();
    outcome.keycloakPageText = (await visibleText(page)).slice(0, 400);
  }
  if (screenshot) {
    await page.screenshot({ path: path.join(OUT_DIR, `${screenshot}.png`) });
  }
  return outcome;
}

/** Signs the cashier in through demo-shop on localhost and returns the outcome with tokens. */
async function signInCashierAtShop(page) {
  const outcome = await authorize(page, {
    host: "localhost",
    client: DEMO_CLIENTS.shop,
    redirectUri: SHOP_REDIRECT_URI,
    user: DEMO_USERS.cashier,
  });
  if (outcome.tokens?.preferredUsername !== "cashier") {
    throw new Error(`cashier sign-in at demo-shop failed: ${JSON.stringify(outcome)}`);
  }
  return outcome;
}

/** Checks what the cashier's own session still gives the shop. */
async function checkCashierSession(page, cashierTokens, label) {
  const refresh = await refreshTokens({
    issuer: realmUrl("localhost", KEYCLOAK_PORT),
    clientId: DEMO_CLIENTS.shop.clientId,
    clientSecret: DEMO_CLIENTS.shop.secret,
    refreshToken: cashierTokens.refresh_token,
  });
  const silent = await authorize(page, {
    host: "localhost",
    client: DEMO_CLIENTS.shop,
    redirectUri: SHOP_REDIRECT_URI,
    extra: { prompt: "none" },
    screenshot: `${label}-shop-silent`,
  });
  return { cashierRefreshGrant: describeTokens(refresh), shopSilentAuth: withoutRawTokens(silent) };
}

function withoutRawTokens(outcome) {
  const { rawTokens: _ignored, ...rest } = outcome;
  return rest;
}

/** Same host: the approval client on localhost, where the cashier's SSO cookies live. */
async function sameHostScenario(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const report = {};

  const cashier = await signInCashierAtShop(page);
  report.cashierSignIn = withoutRawTokens(cashier);
  report.sessionsAfterCashier = await sessionSnapshot();
  report.cookiesAfterCashier = await keycloakCookies(context);

  // Without prompt=login the approval client gets the cashier silently.
  report.approvalWithoutPrompt = withoutRawTokens(
    await authorize(page, {
      host: "localhost",
      client: DEMO_CLIENTS.countersign,
      redirectUri: COUNTERSIGN_REDIRECT_URI,
      screenshot: "same-host-no-prompt",
    }),
  );

  // A login_hint naming the manager does not change the re-authentication
  // form. The attempt is left unfinished.
  report.approvalManagerWithLoginHint = withoutRawTokens(
    await authorize(page, {
      host: "localhost",
      client: DEMO_CLIENTS.countersign,
      redirectUri: COUNTERSIGN_REDIRECT_URI,
      extra: { prompt: "login", max_age: 0, login_hint: "manager" },
      screenshot: "same-host-login-hint",
    }),
  );

  // The fresh sign-in of the approval flow: Keycloak offers the cashier's
  // re-authentication form. The manager restarts the login and signs in.
  report.approvalManagerSignIn = withoutRawTokens(
    await authorize(page, {
      host: "localhost",
      client: DEMO_CLIENTS.countersign,
      redirectUri: COUNTERSIGN_REDIRECT_URI,
      user: DEMO_USERS.manager,
      extra: { prompt: "login", max_age: 0 },
      screenshot: "same-host-manager",
      restartLogin: true,
    }),
  );
  report.sessionsAfterManager = await sessionSnapshot();
  report.cookiesAfterManager = await keycloakCookies(context);
  report.afterManager = await checkCashierSession(page, cashier.rawTokens, "same-host");

  await context.close();
  return report;
}

/** Separate host: the approval client on 127.0.0.1, the shop on localhost. */
async function separateHostScenario(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const report = {};

  const cashier = await signInCashierAtShop(page);
  report.cashierSignIn = withoutRawTokens(cashier);

  const manager = await authorize(page, {
    host: "127.0.0.1",
    client: DEMO_CLIENTS.countersign,
    redirectUri: COUNTERSIGN_REDIRECT_URI,
    user: DEMO_USERS.manager,
    extra: { prompt: "login", max_age: 0 },
    screenshot: "other-host-manager",
  });
  report.approvalManagerSignIn = withoutRawTokens(manager);
  report.sessionsAfterManager = await sessionSnapshot();
  report.cookiesAfterManager = await keycloakCookies(context);
  report.afterManager = await checkCashierSession(page, cashier.rawTokens, "other-host-before-logout");

  const logoutState = randomToken();
  await page.goto(
    endSessionUrl({
      issuer: realmUrl("127.0.0.1", KEYCLOAK_PORT),
      idTokenHint: manager.rawTokens.id_token,
      postLogoutRedirectUri: COUNTERSIGN_SIGNED_OUT_URI,
      state: logoutState,
    }),
  );
  const afterLogout = new URL(page.url());
  report.logout = {
    finalUrl: `${afterLogout.origin}${afterLogout.pathname}`,
    stateReturned: afterLogout.searchParams.get("state") === logoutState,
  };
  report.sessionsAfterLogout = await sessionSnapshot();
  report.cookiesAfterLogout = await keycloakCookies(context);
  report.afterLogout = await checkCashierSession(page, cashier.rawTokens, "other-host-after-logout");
  report.approvalSilentAfterLogout = withoutRawTokens(
    await authorize(page, {
      host: "127.0.0.1",
      client: DEMO_CLIENTS.countersign,
      redirectUri: COUNTERSIGN_REDIRECT_URI,
      extra: { prompt: "none" },
    }),
  );

  await context.close();
  return report;
}

/**
 * Dedicated realm: the approval client lives in its own realm, under the
 * same host name (localhost) as the shop's realm.
 */
async function dedicatedRealmScenario(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const report = {};

  const cashier = await signInCashierAtShop(page);
  report.cashierSignIn = withoutRawTokens(cashier);

  const manager = await authorize(page, {
    host: "localhost",
    realm: APPROVALS_REALM,
    client: DEMO_CLIENTS.countersign,
    redirectUri: COUNTERSIGN_REDIRECT_URI,
    user: DEMO_USERS.manager,
    extra: { prompt: "login", max_age: 0 },
    screenshot: "dedicated-realm-manager",
  });
  report.approvalManagerSignIn = withoutRawTokens(manager);
  report.sessionsAfterManager = await sessionSnapshot();
  report.cookiesAfterManager = await keycloakCookies(context);
  report.afterManager = await checkCashierSession(page, cashier.rawTokens, "dedicated-realm-before-logout");

  const logoutState = randomToken();
  await page.goto(
    endSessionUrl({
      issuer: realmUrl("localhost", KEYCLOAK_PORT, APPROVALS_REALM),
      idTokenHint: manager.rawTokens.id_token,
      postLogoutRedirectUri: COUNTERSIGN_SIGNED_OUT_URI,
      state: logoutState,
    }),
  );
  const afterLogout = new URL(page.url());
  report.logout = {
    finalUrl: `${afterLogout.origin}${afterLogout.pathname}`,
    stateReturned: afterLogout.searchParams.get("state") === logoutState,
  };
  report.sessionsAfterLogout = await sessionSnapshot();
  report.cookiesAfterLogout = await keycloakCookies(context);
  report.afterLogout = await checkCashierSession(page, cashier.rawTokens, "dedicated-realm-after-logout");

  await context.close();
  return report;
}

async function main() {
  await mkdir(OUT_DIR, { recursive: true });
  const report = { keycloakPort: KEYCLOAK_PORT, shopUrl: SHOP_URL, countersignUrl: COUNTERSIGN_URL };
  const cleanups = [];
  try {
    const shopStub = await startStubServer(SHOP_PORT);
    cleanups.push(shopStub.close);
    const countersignStub = await startStubServer(COUNTERSIGN_PORT);
    cleanups.push(countersignStub.close);
    const keycloak = await startKeycloak({
      port: KEYCLOAK_PORT,
      managementPort: KEYCLOAK_MANAGEMENT_PORT,
      shopUrl: SHOP_URL,
      countersignUrl: COUNTERSIGN_URL,
    });
    cleanups.push(keycloak.stop);
    const browser = await launchBrowser();
    cleanups.push(() => browser.close());

    report.sameHost = await sameHostScenario(browser);
    await admin.signOutUser("cashier");
    await admin.signOutUser("manager");
    report.separateHost = await separateHostScenario(browser);
    await admin.signOutUser("cashier");
    await admin.signOutUser("manager");
    report.dedicatedRealm = await dedicatedRealmScenario(browser);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error) => console.error(`cleanup failed: ${error.message}`));
    }
  }
  console.log(JSON.stringify(report, null, 2));
}

await main();
