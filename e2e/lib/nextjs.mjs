// Starts the Next.js example (examples/nextjs-shop) for the browser tests:
// Keycloak and Countersign through stack.mjs, then the built app with
// `next start` on 127.0.0.1, and its steps in the browser.
import { randomBytes } from "node:crypto";
import { access } from "node:fs/promises";
import path from "node:path";
import { REPO_DIR, realmUrl, signInAtKeycloak, startKeycloak } from "./keycloak.mjs";
import { freePorts } from "./ports.mjs";
import { startProcess, waitForHttp } from "./processes.mjs";
import { startStack } from "./stack.mjs";

export const NEXTJS_DIR = path.join(REPO_DIR, "examples/nextjs-shop");

/** The realm's client of the Next.js example (demo-only secret). */
export const NEXTJS_CLIENT = { clientId: "nextjs-shop", secret: "demo-only-nextjs-secret" };

function portFromEnvironment(name) {
  const port = Number(process.env[name]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${name} must be a TCP port number, got '${process.env[name]}'`);
  }
  return port;
}

/**
 * Returns the Next.js app's port. With a Keycloak from scripts/test.sh, the
 * realm's redirect URI fixes it to E2E_NEXTJS_PORT. Without one, this starts
 * a Keycloak of its own, and sets the E2E_* variables so that startStack uses it.
 */
async function prepareKeycloak(cleanups) {
  if (process.env.E2E_KEYCLOAK_PORT) {
    if (!process.env.E2E_NEXTJS_PORT) {
      throw new Error("E2E_KEYCLOAK_PORT is set but E2E_NEXTJS_PORT is not: start Keycloak with NEXTJS_URL, as scripts/test.sh does");
    }
    return portFromEnvironment("E2E_NEXTJS_PORT");
  }
  const [keycloakPort, managementPort, countersignPort, shopPort, nextjsPort] = await freePorts(5);
  const keycloak = await startKeycloak({
    port: keycloakPort,
    managementPort,
    shopUrl: `http://localhost:${shopPort}`,
    countersignUrl: `http://127.0.0.1:${countersignPort}`,
    env: { NEXTJS_URL: `http://localhost:${nextjsPort}` },
  });
  cleanups.push(keycloak.stop);
  Object.assign(process.env, {
    E2E_KEYCLOAK_PORT: String(keycloakPort),
    E2E_COUNTERSIGN_PORT: String(countersignPort),
    E2E_SHOP_PORT: String(shopPort),
  });
  return nextjsPort;
}

/**
 * Starts Keycloak (unless scripts/test.sh runs one), Countersign with the
 * Next.js app's origin in `allowed_origins`, and the app built in
 * examples/nextjs-shop/.next. Returns the stack of startStack plus
 * `nextjs: { url, port, logFile }`; `stop()` stops everything.
 */
export async function startNextjsStack({ name = "nextjs-shop" } = {}) {
  const cleanups = [];
  const stop = async () => {
    const errors = [];
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) {
      throw new AggregateError(errors, `stopping the Next.js stack failed: ${errors.map((error) => error.message).join("; ")}`);
    }
  };

  try {
    try {
      await access(path.join(NEXTJS_DIR, ".next/BUILD_ID"));
    } catch {
      throw new Error(`${NEXTJS_DIR}/.next/BUILD_ID not found: run 'npx next build' there first (scripts/test.sh e2e does)`);
    }
    const port = await prepareKeycloak(cleanups);
    const url = `http://localhost:${port}`;

    const stack = await startStack({ shop: false, name, config: { approvals: { allowed_origins: [url] } } });
    cleanups.push(stack.stop);

    const logFile = path.join(stack.runDir, "nextjs-shop.log");
    const child = startProcess({
      name: "nextjs-shop",
      command: process.execPath,
      args: [path.join(NEXTJS_DIR, "node_modules/next/dist/bin/next"), "start", "--hostname", "127.0.0.1", "--port", String(port)],
      cwd: NEXTJS_DIR,
      env: {
        ...process.env,
        NODE_ENV: "production",
        NEXT_TELEMETRY_DISABLED: "1",
        NEXTAUTH_URL: url,
        // A fresh secret per run, demo only: it encrypts the session cookie.
        NEXTAUTH_SECRET: randomBytes(32).toString("base64url"),
        KEYCLOAK_ISSUER: realmUrl("localhost", stack.keycloak.port),
        KEYCLOAK_CLIENT_ID: NEXTJS_CLIENT.clientId,
        KEYCLOAK_CLIENT_SECRET: NEXTJS_CLIENT.secret,
        COUNTERSIGN_URL: stack.countersign.url,
        COUNTERSIGN_API_KEY: stack.countersign.apiKey,
      },
      logFile,
    });
    cleanups.push(child.stop);
    await waitForHttp(`http://127.0.0.1:${port}/`, { process: child });

    return { ...stack, stop, nextjs: { url, port, logFile, process: child } };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/** Signs `user` in to the Next.js app through NextAuth and Keycloak and waits for `#signed-in-as`. */
export async function signInToNextjsShop(page, url, user) {
  await page.goto(url);
  await Promise.all([page.waitForURL((target) => !target.href.startsWith(url)), page.click("button#sign-in")]);
  await signInAtKeycloak(page, user);
  await page.waitForURL((target) => target.href.startsWith(url));
  await page.locator("#signed-in-as").filter({ hasText: user.username }).waitFor();
}

/**
 * Clicks the refund button of `order` and returns `{ popup, approval }`,
 * where `approval` is the app's create response (`id`, `approval_url`, ...).
 */
export async function requestNextjsRefund(page, order) {
  const isCreateResponse = (response) =>
    response.request().method() === "POST" && new URL(response.url()).pathname === `/api/refunds/${order}/approval`;
  const [popup, response] = await Promise.all([
    page.waitForEvent("popup"),
    page.waitForResponse(isCreateResponse),
    page.click(`button#refund-${order}`),
  ]);
  const approval = await response.json();
  if (response.status() !== 201) {
    throw new Error(`the Next.js app did not create the approval request for order ${order}: HTTP ${response.status()} ${JSON.stringify(approval)}`);
  }
  return { popup, approval };
}

/** Waits until the status line of `order` contains `text` and returns the whole line. */
export async function refundStatus(page, order, text) {
  const status = page.locator(`#refund-status-${order}`);
  await status.filter({ hasText: text }).waitFor({ timeout: 30_000 });
  return (await status.innerText()).trim();
}
