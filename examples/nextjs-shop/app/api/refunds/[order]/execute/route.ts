// Consumes the approval with the payload that the server remembered and
// executes the refund only when Countersign returns an approved decision.
// The browser names the approval id, never what it covers or who decided.
import { NextResponse } from "next/server";

import { currentCashier } from "@/lib/auth";
import { CountersignProblem, consumeApproval, describeApprover } from "@/lib/countersign";
import { jsonMessage, rejectCrossOrigin } from "@/lib/http";
import { findApproval, forgetApproval, recordRefund } from "@/lib/store";

type RouteContext = { params: Promise<{ order: string }> };

/** Body of the response: `ok` is true only when the refund was executed now. */
interface ExecuteResponse {
  ok: boolean;
  message: string;
  approver?: string;
}

function refused(orderId: string, reason: string): NextResponse<ExecuteResponse> {
  return NextResponse.json({ ok: false, message: `Refund of order ${orderId} refused: ${reason}` });
}

export async function POST(request: Request, context: RouteContext): Promise<NextResponse> {
  const rejected = rejectCrossOrigin(request);
  if (rejected) return rejected;
  const cashier = await currentCashier();
  if (!cashier) return jsonMessage(401, "Sign in first.");
  const { order: orderId } = await context.params;

  const body: unknown = await request.json().catch(() => null);
  const approvalId = (body as { approval_id?: unknown } | null)?.approval_id;
  if (typeof approvalId !== "string" || approvalId === "") {
    return jsonMessage(400, 'The request body must be JSON {"approval_id": "..."}.');
  }
  const remembered = findApproval(approvalId, orderId, cashier.sub);
  if (!remembered) {
    return jsonMessage(404, `Refund of order ${orderId} refused: you did not request that approval for this order.`);
  }

  let consumed;
  try {
    consumed = await consumeApproval(approvalId, remembered.payload);
  } catch (error) {
    if (error instanceof CountersignProblem) {
      console.warn(`Countersign rejected the consume of approval ${approvalId} for order ${orderId}: ${error.code}`);
      // A pending approval can still be decided, so only then is the payload kept.
      if (error.code !== "approval_pending") forgetApproval(approvalId);
      return refused(orderId, error.message);
    }
    console.error(`consuming approval ${approvalId} for order ${orderId} failed:`, error);
    return jsonMessage(502, `Refund of order ${orderId} not done: consuming the approval at Countersign failed.`);
  }
  forgetApproval(approvalId);

  const approver = describeApprover(consumed.approver);
  if (consumed.decision !== "approved") {
    const reason = consumed.reason?.trim();
    console.info(`approval ${approvalId} for order ${orderId} was ${consumed.decision} by ${consumed.approver?.sub ?? "?"}`);
    return refused(orderId, `${consumed.decision} by ${approver}${reason ? `: ${reason}` : ""}`);
  }
  if (!recordRefund(orderId, { approvalId, approvedBy: approver })) {
    return refused(orderId, "the order was already refunded");
  }
  console.info(`refund of order ${orderId} executed, approval ${approvalId}, approver ${consumed.approver?.sub ?? "?"}`);
  const response: ExecuteResponse = {
    ok: true,
    message: `Refund of order ${orderId} executed, approved by ${approver}`,
    approver,
  };
  return NextResponse.json(response);
}
