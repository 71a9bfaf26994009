// Creates the Countersign approval request for a refund and returns
// Countersign's create response to the browser SDK.
import { NextResponse } from "next/server";

import { currentCashier } from "@/lib/auth";
import { shopOrigin } from "@/lib/config";
import { createApproval } from "@/lib/countersign";
import { jsonMessage, rejectCrossOrigin } from "@/lib/http";
import { APPROVAL_LIFETIME_SECONDS, findOrder, refundPayload, refundSummary, REQUIRED_ROLE } from "@/lib/orders";
import { findRefund, MAX_REMEMBERED_APPROVALS, rememberApproval } from "@/lib/store";

type RouteContext = { params: Promise<{ order: string }> };

export async function POST(request: Request, context: RouteContext): Promise<NextResponse> {
  const rejected = rejectCrossOrigin(request);
  if (rejected) return rejected;
  const cashier = await currentCashier();
  if (!cashier) return jsonMessage(401, "Sign in first.");
  const { order: orderId } = await context.params;
  const order = findOrder(orderId);
  if (!order) return jsonMessage(404, `Order ${orderId} does not exist.`);
  if (findRefund(order.id)) return jsonMessage(409, `Order ${order.id} is already refunded.`);

  // The payload is built here from the server's own data and remembered
  // below; the execute handler consumes the approval with exactly this payload.
  const payload = refundPayload(order, { sub: cashier.sub, name: cashier.name });
  let created;
  try {
    created = await createApproval({
      ...payload,
      summary: refundSummary(order),
      required_role: REQUIRED_ROLE,
      origin: shopOrigin(),
      lifetime_seconds: APPROVAL_LIFETIME_SECONDS,
    });
  } catch (error) {
    console.error(`creating the approval request for order ${order.id} failed:`, error);
    return jsonMessage(502, `Countersign did not create the approval request: ${(error as Error).message}`);
  }

  const expiresAt = Date.parse(created.expires_at);
  const remembered = rememberApproval(created.id, {
    orderId: order.id,
    requesterSub: cashier.sub,
    payload,
    expiresAt: Number.isNaN(expiresAt) ? Date.now() + APPROVAL_LIFETIME_SECONDS * 1000 : expiresAt,
  });
  if (!remembered) {
    console.error(`approval ${created.id} for order ${order.id} not remembered: ${MAX_REMEMBERED_APPROVALS} approvals are pending`);
    return jsonMessage(503, `${MAX_REMEMBERED_APPROVALS} approvals are pending already. Try again when some have expired.`);
  }
  console.info(`approval ${created.id} requested for order ${order.id} by ${cashier.sub}`);

  const { id, status, approval_url, events_url, expires_at } = created;
  return NextResponse.json({ id, status, approval_url, events_url, expires_at }, { status: 201 });
}
