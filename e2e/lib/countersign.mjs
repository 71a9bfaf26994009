// Client of Countersign's host API (docs/design.md, "Host API") for the tests.
import { createHash, randomBytes } from "node:crypto";

/** Creates a random API key and its SHA-256 hex digest, which goes into the config. */
export function createApiKey() {
  const key = `cs_test_${randomBytes(24).toString("base64url")}`;
  const sha256 = createHash("sha256").update(key).digest("hex");
  return { key, sha256 };
}

/**
 * Returns an approval request body for a refund, in the shape of
 * `POST /api/v1/approvals`. `overrides` replaces top-level fields.
 */
export function refundApprovalRequest({ order = "1001", amount = "49.90", requester, origin, ...overrides } = {}) {
  return {
    action: "refund",
    summary: `Refund order ${order}: ${amount} EUR`,
    details: { order, amount, currency: "EUR" },
    requester,
    required_role: "MANAGER",
    origin,
    lifetime_seconds: 300,
    ...overrides,
  };
}

/**
 * Returns the payload of an approval request body: the fields that
 * Countersign hashes and that a consume call must repeat.
 */
export function approvalPayload({ action, details, requester }) {
  return { action, details, requester };
}

/**
 * Host API client. Every method returns `{ status, headers, body }` for any
 * HTTP status, so tests can assert on problem+json errors as well.
 */
export class CountersignApi {
  /** `baseUrl` is Countersign's public URL; `apiKey` is sent as a bearer token. */
  constructor(baseUrl, apiKey) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.apiKey = apiKey;
  }

  async request(method, path, body) {
    const headers = { accept: "application/json" };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { raw: text };
      }
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  /** Creates an approval request (`POST /api/v1/approvals`). */
  create(request) {
    return this.request("POST", "/api/v1/approvals", request);
  }

  /** Reads an approval's status object (`GET /api/v1/approvals/{id}`). */
  status(id) {
    return this.request("GET", `/api/v1/approvals/${encodeURIComponent(id)}`);
  }

  /**
   * Consumes a decided approval (`POST /api/v1/approvals/{id}/consume`).
   * `proof` is `{ payload }` or `{ payload_hash }`.
   */
  consume(id, proof) {
    return this.request("POST", `/api/v1/approvals/${encodeURIComponent(id)}/consume`, proof);
  }

  /** Polls the status until it is no longer `pending`, for at most `timeoutMs`; returns the last response. */
  async waitForDecision(id, { timeoutMs = 30_000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let response = await this.status(id);
    while (response.status === 200 && response.body.status === "pending" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      response = await this.status(id);
    }
    return response;
  }
}
