// Starts the whole stack of a test run on 127.0.0.1: Keycloak (unless the
// caller already runs one, see below), the countersign binary and the
// demo-shop binary, each on its own port, and stops them again.
//
// scripts/test.sh starts Keycloak once for the whole suite and passes its
// ports in E2E_KEYCLOAK_PORT, E2E_COUNTERSIGN_PORT and E2E_SHOP_PORT: the
// realm's redirect URIs contain the Countersign and shop ports, so those are
// fixed for that Keycloak. Without these variables startStack starts (and
// stops) a Keycloak of its own on free ports, which costs about 15-20 s.
import { mkdir, writeFile, access } from "node:fs/promises";
import path from "node:path";
import { createApiKey, CountersignApi } from "./countersign.mjs";
import { DEMO_CLIENTS, KeycloakAdmin, REPO_DIR, realmUrl, startKeycloak } from "./keycloak.mjs";
import { freePorts } from "./ports.mjs";
import { startProcess, waitForHttp } from "./processes.mjs";

const TARGET_DIR = process.env.CARGO_TARGET_DIR ?? path.join(REPO_DIR, "target");
/** Folder of the countersign and demo-shop binaries (`cargo build` output). */
export const BINARY_DIR = process.env.E2E_BINARY_DIR ?? path.join(TARGET_DIR, "debug");
/** Parent folder of each run's config, database and logs (gitignored). */
export const RESULTS_DIR = path.join(REPO_DIR, "e2e/results");

function tomlValue(value) {
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(", ")}]`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  // A JSON string of printable text is also a valid TOML basic string.
  return JSON.stringify(String(value));
}

/** Renders `{ section: { key: value } }` plus `[[api_keys]]` entries as TOML. */
export function renderCountersignToml(sections, apiKeys) {
  const lines = [];
  for (const [section, values] of Object.entries(sections)) {
    lines.push(`[${section}]`);
    for (const [key, value] of Object.entries(values)) {
      lines.push(`${key} = ${tomlValue(value)}`);
    }
    lines.push("");
  }
  for (const apiKey of apiKeys) {
    lines.push("[[api_keys]]", `name = ${tomlValue(apiKey.name)}`, `sha256 = ${tomlValue(apiKey.sha256)}`, "");
  }
  return lines.join("\n");
}

async function requireBinary(name) {
  const file = path.join(BINARY_DIR, name);
  try {
    await access(file);
  } catch {
    throw new Error(`${file} not found: run 'cargo build --workspace' first (or set E2E_BINARY_DIR)`);
  }
  return file;
}

/** Reads the ports of a Keycloak that scripts/test.sh started, or returns null. */
function portsFromEnvironment() {
  const names = ["E2E_KEYCLOAK_PORT", "E2E_COUNTERSIGN_PORT", "E2E_SHOP_PORT"];
  const present = names.filter((name) => process.env[name]);
  if (present.length === 0) return null;
  if (present.length !== names.length) {
    throw new Error(`set all of ${names.join(", ")} or none of them; only ${present.join(", ")} set`);
  }
  const [keycloak, countersign, shop] = names.map((name) => {
    const port = Number(process.env[name]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`${name} must be a TCP port number, got '${process.env[name]}'`);
    }
    return port;
  });
  return { keycloak, countersign, shop };
}

function merge(base, overrides) {
  const result = structuredClone(base);
  for (const [section, values] of Object.entries(overrides)) {
    result[section] = { ...(result[section] ?? {}), ...values };
  }
  return result;
}

/**
 * Starts the stack and returns it; call `stack.stop()` in an `after` hook.
 *
 * Options: `countersign` and `shop` (default true) choose which binaries run;
 * `config` overrides sections of the generated countersign.toml, for example
 * `{ approvals: { max_lifetime_seconds: 600 } }` (Countersign rejects any
 * lifetime below 30 s); `name` names the run's folder under e2e/results.
 *
 * The result has these fields:
 * - `keycloak`: `port`, `baseUrl`, `shopIssuer` (localhost), `countersignIssuer` (127.0.0.1)
 * - `admin`: a KeycloakAdmin of the demo realm
 * - `countersign`: `url`, `apiKey`, `api` (a CountersignApi), `configPath`, `logFile`, or null
 * - `shop`: `url`, `logFile`, or null
 * - `urls`, `ports`: the registered URLs and ports, also when a binary is not started
 * - `runDir`, `stop()`
 */
export async function startStack({ countersign = true, shop = true, config = {}, name = "stack" } = {}) {
  const runDir = path.join(RESULTS_DIR, `${name}-${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`);
  await mkdir(runDir, { recursive: true });

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
      throw new AggregateError(errors, `stopping the stack failed: ${errors.map((error) => error.message).join("; ")}`);
    }
  };

  try {
    let ports = portsFromEnvironment();
    if (!ports) {
      const [keycloakPort, managementPort, countersignPort, shopPort] = await freePorts(4);
      ports = { keycloak: keycloakPort, countersign: countersignPort, shop: shopPort };
      const keycloak = await startKeycloak({
        port: keycloakPort,
        managementPort,
        shopUrl: `http://localhost:${shopPort}`,
        countersignUrl: `http://127.0.0.1:${countersignPort}`,
      });
      cleanups.push(keycloak.stop);
    }

    const stack = {
      runDir,
      stop,
      keycloak: {
        port: ports.keycloak,
        baseUrl: `http://127.0.0.1:${ports.keycloak}`,
        shopIssuer: realmUrl("localhost", ports.keycloak),
        countersignIssuer: realmUrl("127.0.0.1", ports.keycloak),
      },
      admin: new KeycloakAdmin(`http://127.0.0.1:${ports.keycloak}`),
      // The URLs registered in the realm, also when the binary is not started.
      urls: { countersign: `http://127.0.0.1:${ports.countersign}`, shop: `http://localhost:${ports.shop}` },
      ports,
      countersign: null,
      shop: null,
    };
    const countersignUrl = stack.urls.countersign;
    const shopUrl = stack.urls.shop;
    const apiKey = createApiKey();

    if (countersign) {
      const binary = await requireBinary("countersign");
      const configPath = path.join(runDir, "countersign.toml");
      const sections = merge(
        {
          server: { listen: `127.0.0.1:${ports.countersign}`, public_url: countersignUrl },
          database: { path: path.join(runDir, "countersign.sqlite") },
          oidc: { issuer: stack.keycloak.countersignIssuer, client_id: DEMO_CLIENTS.countersign.clientId },
          approvals: { allowed_origins: [shopUrl] },
          // Every browser test signs in from 127.0.0.1, so the whole suite
          // shares one client address in the popup's rate limit.
          limits: { popup_per_minute: 600 },
        },
        config,
      );
      await writeFile(configPath, renderCountersignToml(sections, [{ name: "demo-shop", sha256: apiKey.sha256 }]));
      const logFile = path.join(runDir, "countersign.log");
      const child = startProcess({
        name: "countersign",
        command: binary,
        args: ["serve", "--config", configPath],
        cwd: runDir,
        env: {
          ...process.env,
          COUNTERSIGN_OIDC_CLIENT_SECRET: DEMO_CLIENTS.countersign.secret,
          RUST_LOG: process.env.RUST_LOG ?? "info",
        },
        logFile,
      });
      cleanups.push(child.stop);
      await waitForHttp(`${countersignUrl}/healthz`, { process: child });
      stack.countersign = {
        url: countersignUrl,
        apiKey: apiKey.key,
        api: new CountersignApi(countersignUrl, apiKey.key),
        configPath,
        logFile,
        process: child,
      };
    }

    if (shop) {
      const binary = await requireBinary("demo-shop");
      const logFile = path.join(runDir, "demo-shop.log");
      const child = startProcess({
        name: "demo-shop",
        command: binary,
        cwd: REPO_DIR,
        env: {
          ...process.env,
          SHOP_LISTEN: `127.0.0.1:${ports.shop}`,
          SHOP_PUBLIC_URL: shopUrl,
          SHOP_OIDC_ISSUER: stack.keycloak.shopIssuer,
          SHOP_OIDC_CLIENT_ID: DEMO_CLIENTS.shop.clientId,
          SHOP_OIDC_CLIENT_SECRET: DEMO_CLIENTS.shop.secret,
          SHOP_COUNTERSIGN_URL: countersignUrl,
          SHOP_COUNTERSIGN_API_KEY: apiKey.key,
          SHOP_SDK_PATH: path.join(REPO_DIR, "sdk/dist/countersign.js"),
          RUST_LOG: process.env.RUST_LOG ?? "info",
        },
        logFile,
      });
      cleanups.push(child.stop);
      await waitForHttp(`http://127.0.0.1:${ports.shop}/`, { process: child });
      stack.shop = { url: shopUrl, logFile, process: child };
    }

    return stack;
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}
