// Keycloak helpers for the tests: the demo realm's names, the login form,
// the admin API through the countersign-test-admin service account, and
// starting or stopping the server through scripts/keycloak.sh.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import path from "node:path";
import { fileURLToPath } from "node:url";

const execFileAsync = promisify(execFile);

export const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const KEYCLOAK_SCRIPT = path.join(REPO_DIR, "scripts/keycloak.sh");

export const REALM = "countersign-demo";
/** Example of a dedicated approval realm (deploy/keycloak/countersign-approvals-realm.json). */
export const APPROVALS_REALM = "countersign-approvals";

/** Demo accounts of deploy/keycloak/countersign-demo-realm.json (demo-only passwords). */
export const DEMO_USERS = {
  cashier: { username: "cashier", password: "demo-cashier-password", name: "Carla Cashier", role: "CASHIER" },
  manager: { username: "manager", password: "demo-manager-password", name: "Maria Manager", role: "MANAGER" },
  manager2: { username: "manager2", password: "demo-manager2-password", name: "Max Manager", role: "MANAGER" },
  clerk: { username: "clerk", password: "demo-clerk-password", name: "Chris Clerk", role: null },
};

/** Demo client credentials of the realm file (demo-only secrets). */
export const DEMO_CLIENTS = {
  shop: { clientId: "demo-shop", secret: "demo-only-shop-secret" },
  countersign: { clientId: "countersign", secret: "demo-only-countersign-secret" },
  testAdmin: { clientId: "countersign-test-admin", secret: "demo-only-test-admin-secret" },
};

/** Returns the realm URL (the issuer) under `host`, e.g. `localhost` or `127.0.0.1`. */
export function realmUrl(host, port, realm = REALM) {
  return `http://${host}:${port}/realms/${realm}`;
}

/**
 * Fills in and submits Keycloak's login form on `page`, which must show it.
 * Waits until the browser has left the submitted form page.
 */
export async function signInAtKeycloak(page, { username, password }) {
  await page.locator("#username").waitFor({ state: "visible" });
  await page.fill("#username", username);
  await page.fill("#password", password);
  await Promise.all([page.waitForEvent("framenavigated"), page.click("#kc-login")]);
  await page.waitForLoadState("domcontentloaded");
}

/**
 * Admin API client of one realm, signed in as that realm's
 * countersign-test-admin service account (realm-management view-users,
 * manage-users, query-users).
 */
export class KeycloakAdmin {
  /** `baseUrl` is Keycloak's root URL, e.g. http://127.0.0.1:18080. */
  constructor(baseUrl, { realm = REALM, clientId = DEMO_CLIENTS.testAdmin.clientId, clientSecret = DEMO_CLIENTS.testAdmin.secret } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.realm = realm;
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.accessToken = null;
    this.expiresAt = 0;
  }

  /** Returns a service-account access token, fetching a new one shortly before expiry. */
  async token() {
    if (this.accessToken && Date.now() < this.expiresAt - 10_000) {
      return this.accessToken;
    }
    const response = await fetch(`${this.baseUrl}/realms/${this.realm}/protocol/openid-connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: this.clientId, client_secret: this.clientSecret }),
    });
    if (!response.ok) {
      throw new Error(`client credentials grant for ${this.clientId} failed: HTTP ${response.status} ${await response.text()}`);
    }
    const body = await response.json();
    this.accessToken = body.access_token;
    this.expiresAt = Date.now() + body.expires_in * 1000;
    return this.accessToken;
  }

  /** Sends an admin API request below /admin/realms/<realm>; returns the parsed JSON body or null. */
  async request(method, pathBelowRealm) {
    const url = `${this.baseUrl}/admin/realms/${this.realm}${pathBelowRealm}`;
    const response = await fetch(url, { method, headers: { authorization: `Bearer ${await this.token()}` } });
    if (!response.ok) {
      throw new Error(`admin API ${method} ${url} failed: HTTP ${response.status} ${await response.text()}`);
    }
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  /** Returns the user representation for the exact `username`; throws if there is none. */
  async findUser(username) {
    const users = await this.request("GET", `/users?username=${encodeURIComponent(username)}&exact=true`);
    const user = users.find((candidate) => candidate.username === username);
    if (!user) {
      throw new Error(`user ${username} not found in realm ${this.realm}`);
    }
    return user;
  }

  /** Lists the SSO sessions of `username`: `[{ id, start, lastAccess, clients }]`. */
  async userSessions(username) {
    const user = await this.findUser(username);
    return this.request("GET", `/users/${user.id}/sessions`);
  }

  /** Ends every session of `username`, so a test starts from a known state. */
  async signOutUser(username) {
    const user = await this.findUser(username);
    await this.request("POST", `/users/${user.id}/logout`);
  }

  /** Ends every session of every demo user. */
  async signOutDemoUsers() {
    for (const username of Object.keys(DEMO_USERS)) {
      await this.signOutUser(username);
    }
  }
}

/**
 * Starts Keycloak through scripts/keycloak.sh with the given ports and
 * redirect URLs, waits for the realm, and returns `{ port, managementPort, stop }`.
 * `env` can set KEYCLOAK_RUN_DIR and the other variables the script reads.
 */
export async function startKeycloak({ port, managementPort, shopUrl, countersignUrl, env = {} }) {
  const scriptEnv = {
    ...process.env,
    KEYCLOAK_PORT: String(port),
    KEYCLOAK_MANAGEMENT_PORT: String(managementPort),
    SHOP_URL: shopUrl,
    COUNTERSIGN_URL: countersignUrl,
    ...env,
  };
  const run = (command) =>
    execFileAsync(KEYCLOAK_SCRIPT, [command], { env: scriptEnv, maxBuffer: 16 * 1024 * 1024 });
  const stop = async () => {
    await run("stop");
  };

  await run("start");
  try {
    await run("wait");
  } catch (error) {
    await stop().catch(() => {});
    throw new Error(`Keycloak did not become ready: ${error.stderr ?? error.message}`);
  }
  return { port, managementPort, stop };
}
