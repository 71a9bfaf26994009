// The demo orders, the same as the Rust demo shop's, and the approval
// payload of a refund.

export interface Order {
  id: string;
  currency: string;
  /** Total as a decimal string, because Countersign canonicalizes JSON numbers (49.90 becomes 49.9). */
  amount: string;
  items: string[];
}

export const ORDERS: readonly Order[] = [
  { id: "1001", currency: "EUR", amount: "49.90", items: ["2 × Coffee beans"] },
  { id: "1002", currency: "EUR", amount: "189.00", items: ["1 × Espresso machine"] },
  { id: "1003", currency: "EUR", amount: "46.00", items: ["1 × Milk frother", "2 × Ceramic mug"] },
];

/** Role that the approver of a refund must hold in Keycloak. */
export const REQUIRED_ROLE = "MANAGER";

/** Lifetime of a refund approval request at Countersign, in seconds. */
export const APPROVAL_LIFETIME_SECONDS = 300;

export interface Requester {
  sub: string;
  name: string;
}

/** The part of an approval request that Countersign hashes and that consume must repeat. */
export interface RefundPayload {
  action: "refund";
  details: { order: string; amount: string; currency: string; items: string[] };
  requester: Requester;
}

export function findOrder(id: string): Order | undefined {
  return ORDERS.find((order) => order.id === id);
}

export function refundPayload(order: Order, requester: Requester): RefundPayload {
  return {
    action: "refund",
    details: { order: order.id, amount: order.amount, currency: order.currency, items: [...order.items] },
    requester: { sub: requester.sub, name: requester.name },
  };
}

/** Summary line that the approver reads first, for example `Refund order 1001: 49.90 EUR (2 × Coffee beans)`. */
export function refundSummary(order: Order): string {
  return `Refund order ${order.id}: ${order.amount} ${order.currency} (${order.items.join(", ")})`;
}
