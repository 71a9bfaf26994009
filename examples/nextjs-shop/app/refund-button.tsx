"use client";
// Refund button of one order: requests a manager's approval at Countersign
// through the React hook, then lets the server consume it and execute the refund.
import { useRouter } from "next/navigation";
import { useState } from "react";
import { CountersignError, useCountersign, type CreatedApproval } from "@countersign/sdk/react";

interface Props {
  orderId: string;
  countersignOrigin: string;
  /** Approver of an earlier refund of this order, or null when it is not refunded. */
  refundedBy: string | null;
}

/** Returns the `message` of the app's JSON response, or a text with the HTTP status. */
async function readMessage(response: Response): Promise<{ ok: boolean; message: string }> {
  const body = (await response.json().catch(() => null)) as { ok?: unknown; message?: unknown } | null;
  const message = typeof body?.message === "string" ? body.message : `The shop returned HTTP ${response.status}.`;
  return { ok: response.ok && body?.ok === true, message };
}

function describeError(orderId: string, error: unknown): string {
  if (error instanceof CountersignError) {
    const cause = error.cause instanceof Error ? ` ${error.cause.message}` : "";
    return `Refund of order ${orderId} not done: ${error.message}${cause}`;
  }
  return `Refund of order ${orderId} not done: ${error instanceof Error ? error.message : String(error)}`;
}

export function RefundButton({ orderId, countersignOrigin, refundedBy }: Props) {
  const router = useRouter();
  const { request, reopen, pending, popupClosed } = useCountersign({ countersignOrigin });
  const [message, setMessage] = useState(refundedBy ? `Refunded, approved by ${refundedBy}` : "");
  const [executing, setExecuting] = useState(false);

  const createApproval = async (): Promise<CreatedApproval> => {
    const response = await fetch(`/api/refunds/${orderId}/approval`, { method: "POST" });
    if (response.status !== 201) {
      throw new Error((await readMessage(response)).message);
    }
    return (await response.json()) as CreatedApproval;
  };

  // The server consumes the approval, so only its response shows whether the refund happened.
  const execute = async (approvalId: string): Promise<void> => {
    setExecuting(true);
    try {
      const response = await fetch(`/api/refunds/${orderId}/execute`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ approval_id: approvalId }),
      });
      const { ok, message: text } = await readMessage(response);
      setMessage(text);
      if (ok) router.refresh();
    } finally {
      setExecuting(false);
    }
  };

  const onRefund = (): void => {
    setMessage("Waiting for a manager's approval in the popup.");
    // request() must run before any await in this handler: browsers block
    // the popup once the click's user activation has passed.
    request(createApproval)
      .then(
        ({ id }) => execute(id),
        (error: unknown) => {
          // A rejection is consumed too, so the page shows the approver's reason.
          if (error instanceof CountersignError && error.code === "rejected" && error.id) {
            return execute(error.id);
          }
          setMessage(describeError(orderId, error));
        },
      )
      .catch((error: unknown) => setMessage(describeError(orderId, error)));
  };

  return (
    <>
      <button id={`refund-${orderId}`} type="button" onClick={onRefund} disabled={pending || executing || refundedBy !== null}>
        Refund
      </button>
      {popupClosed ? (
        <button id={`reopen-${orderId}`} type="button" onClick={() => reopen()}>
          Reopen approval
        </button>
      ) : null}
      <span id={`refund-status-${orderId}`} className="refund-status" role="status">
        {message}
      </span>
    </>
  );
}
