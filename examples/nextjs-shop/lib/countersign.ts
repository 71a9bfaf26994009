// Client of Countersign's host API, used by the route handlers only: it sends
// the API key, which must never reach the browser.
import { countersignConfig } from "./config";
import type { RefundPayload } from "./orders";

/** An `application/problem+json` response of Countersign, with its stable `code`. */
export class CountersignProblem extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, detail: string) {
    super(`Countersign returned HTTP ${status} (${code}): ${detail}`);
    this.name = "CountersignProblem";
    this.status = status;
    this.code = code;
  }
}

/** Body of `POST /api/v1/approvals`. */
export interface ApprovalRequest extends RefundPayload {
  summary: string;
  required_role: string;
  origin: string;
  lifetime_seconds: number;
}

/** Response of `POST /api/v1/approvals`; the browser SDK needs `id`, `approval_url` and `events_url`. */
export interface CreatedApproval {
  id: string;
  status: string;
  approval_url: string;
  events_url: string;
  expires_at: string;
  payload_hash: string;
}

export interface Approver {
  sub: string;
  name: string | null;
  username: string | null;
}

/** Response of `POST /api/v1/approvals/{id}/consume`. */
export interface ConsumedApproval {
  id: string;
  decision: "approved" | "rejected";
  reason: string | null;
  approver: Approver | null;
  decided_at: string;
  consumed_at: string;
}

const REQUEST_TIMEOUT_MS = 10_000;

async function post<T>(path: string, body: unknown): Promise<T> {
  const { url, apiKey } = countersignConfig();
  const response = await fetch(`${url}/api/v1/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    cache: "no-store",
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`Countersign sent a response that is not JSON (HTTP ${response.status}): ${text.slice(0, 200)}`);
  }
  if (!response.ok) {
    const problem = (parsed ?? {}) as { code?: unknown; detail?: unknown; title?: unknown };
    const code = typeof problem.code === "string" ? problem.code : "unknown";
    const detail = typeof problem.detail === "string" ? problem.detail : String(problem.title ?? text.slice(0, 200));
    throw new CountersignProblem(response.status, code, detail);
  }
  return parsed as T;
}

export async function createApproval(request: ApprovalRequest): Promise<CreatedApproval> {
  const created = await post<CreatedApproval>("approvals", request);
  if (typeof created?.id !== "string" || created.id === "") {
    throw new Error("Countersign's create response has no approval id");
  }
  return created;
}

/**
 * Consumes the decision for `payload`, which must be the payload that the
 * request was created for. Succeeds once per approval.
 */
export async function consumeApproval(id: string, payload: RefundPayload): Promise<ConsumedApproval> {
  return post<ConsumedApproval>(`approvals/${encodeURIComponent(id)}/consume`, { payload });
}

/** Describes an approver as `Maria Manager (manager)`. */
export function describeApprover(approver: Approver | null): string {
  if (!approver) return "an unknown approver";
  if (approver.name && approver.username) return `${approver.name} (${approver.username})`;
  return approver.name ?? approver.username ?? `subject ${approver.sub}`;
}
