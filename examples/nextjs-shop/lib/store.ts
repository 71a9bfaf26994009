// In-memory state of the demo: the payloads remembered for pending
// approvals and the refunded orders. Both are lost on restart.
import type { RefundPayload } from "./orders";

/** Payload and requester of an approval request, stored when the server created it. */
export interface RememberedApproval {
  orderId: string;
  /** Keycloak subject of the cashier who requested it. */
  requesterSub: string;
  payload: RefundPayload;
  /** Milliseconds since the epoch after which Countersign no longer accepts a consume. */
  expiresAt: number;
}

export interface Refund {
  approvalId: string;
  approvedBy: string;
}

/** Upper bound of remembered approvals, so that a client cannot grow the map without limit. */
export const MAX_REMEMBERED_APPROVALS = 1000;

interface ShopState {
  approvals: Map<string, RememberedApproval>;
  refunds: Map<string, Refund>;
}

// Route handlers and pages can be bundled into separate chunks, so the state
// lives on globalThis to make sure that all of them share one copy.
const globalState = globalThis as typeof globalThis & { __countersignNextShop?: ShopState };
const state: ShopState = (globalState.__countersignNextShop ??= { approvals: new Map(), refunds: new Map() });

function dropExpired(now: number): void {
  for (const [id, approval] of state.approvals) {
    if (approval.expiresAt < now) state.approvals.delete(id);
  }
}

/** Stores `approval` under its id. Returns false when the store is full. */
export function rememberApproval(id: string, approval: RememberedApproval): boolean {
  dropExpired(Date.now());
  if (state.approvals.size >= MAX_REMEMBERED_APPROVALS) return false;
  state.approvals.set(id, approval);
  return true;
}

/** Returns the approval remembered under `id` when the same cashier requested it for `orderId`. */
export function findApproval(id: string, orderId: string, requesterSub: string): RememberedApproval | undefined {
  const approval = state.approvals.get(id);
  if (!approval || approval.orderId !== orderId || approval.requesterSub !== requesterSub) return undefined;
  return approval;
}

export function forgetApproval(id: string): void {
  state.approvals.delete(id);
}

export function findRefund(orderId: string): Refund | undefined {
  return state.refunds.get(orderId);
}

/** Records the refund of `orderId`. Returns false when the order was refunded before. */
export function recordRefund(orderId: string, refund: Refund): boolean {
  if (state.refunds.has(orderId)) return false;
  state.refunds.set(orderId, refund);
  return true;
}
