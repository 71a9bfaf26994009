// Page script of the demo shop. A refund button requests a manager's approval
// through the Countersign browser SDK, then requests the refund from the shop's
// backend. Only the backend's consume call decides, so the SDK's result merely
// triggers that request.

const orders = document.getElementById("orders");
const statusOutput = document.getElementById("refund-status");
const detailOutput = document.getElementById("refund-detail");

let sdk;
try {
  sdk = await import("./countersign.js");
} catch (error) {
  if (detailOutput) {
    detailOutput.textContent =
      `The Countersign browser SDK did not load from /static/countersign.js (${error.message}). ` +
      "Build it with `npm ci && npm run build` in sdk/.";
  }
}

const countersignOrigin = orders?.dataset.countersignOrigin;

if (orders && sdk) {
  for (const button of orders.querySelectorAll("button[data-order]")) {
    button.addEventListener("click", () => startRefund(button.dataset.order));
  }
}

function startRefund(order) {
  // requestApproval opens the popup, so it runs before anything is awaited:
  // popup blockers allow window.open only while the click is handled.
  const approval = sdk.requestApproval({
    countersignOrigin,
    create: () => createApproval(order),
  });
  show("waiting", "");

  approval
    .then(
      (result) => {
        recordSettled();
        return execute(order, result.id);
      },
      (error) => {
        recordSettled();
        return explainFailure(order, error);
      },
    )
    .then(({ message, detail }) => show(message, detail));
}

// The end-to-end tests measure the time from the decision to this moment.
function recordSettled() {
  window.__countersignTimes = { resolvedAt: Date.now() };
}

async function createApproval(order) {
  const { response, body } = await post(`/refunds/${order}/approval`);
  if (!response.ok) {
    throw new Error(body?.message ?? `The shop responded with HTTP ${response.status}.`);
  }
  return body;
}

async function execute(order, approvalId) {
  try {
    const { response, body } = await post(`/refunds/${order}/execute`, { approval_id: approvalId });
    if (typeof body?.message !== "string") {
      return { message: `Refund of order ${order} not done: failed`, detail: `The shop responded with HTTP ${response.status}.` };
    }
    if (body.ok) {
      markRefunded(order);
    }
    return { message: body.message, detail: "" };
  } catch (error) {
    return { message: `Refund of order ${order} not done: failed`, detail: `The request to the shop failed: ${error.message}` };
  }
}

// A rejected approval is still consumed, because only the backend learns the
// manager's reason. Other failures have nothing to consume.
function explainFailure(order, error) {
  if (error instanceof sdk.CountersignError && error.code === "rejected" && error.id) {
    return execute(order, error.id);
  }
  const code = error instanceof sdk.CountersignError ? error.code : "failed";
  const cause = error?.cause instanceof Error ? error.cause.message : "";
  return { message: `Refund of order ${order} not done: ${code}`, detail: [error?.message, cause].filter(Boolean).join(" ") };
}

async function post(url, json) {
  const init = { method: "POST", headers: { accept: "application/json" } };
  if (json !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  const response = await fetch(url, init);
  const body = await response.json().catch(() => null);
  return { response, body };
}

function markRefunded(order) {
  const cell = document.getElementById(`order-status-${order}`);
  if (cell) {
    cell.textContent = "refunded";
  }
}

function show(message, detail) {
  statusOutput.textContent = message;
  detailOutput.textContent = detail;
}
