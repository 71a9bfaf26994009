// Page script of the demo shop. A refund button requests a manager's approval
// through the Countersign browser SDK, then requests the refund from the shop's
// backend. Only the backend's consume call decides, so the SDK's result merely
// triggers that request.
//
// A pending request is kept in sessionStorage, so a reload of the page follows
// it again through the SDK's followApproval, without a popup.

const orders = document.getElementById("orders");
const statusOutput = document.getElementById("refund-status");
const detailOutput = document.getElementById("refund-detail");
const reopenButton = document.getElementById("refund-reopen");
const retryButton = document.getElementById("refund-retry");
const PENDING_STORAGE_KEY = "countersign-demo-shop:pending-refund";

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
  for (const button of orders.querySelectorAll("button[data-remote-order]")) {
    button.addEventListener("click", () => startRemoteRefund(button.dataset.remoteOrder));
  }
  resumePendingRefund();
}

function startRefund(order) {
  // requestApproval opens the popup, so it runs before anything is awaited:
  // popup blockers allow window.open only while the click is handled.
  const approval = sdk.requestApproval({
    countersignOrigin,
    create: () => createApproval(order),
    onClosed: offerReopen,
  });
  show("waiting", "");
  settleRefund(order, approval);
}

// Follows the request that the page had created before it was reloaded.
function resumePendingRefund() {
  const pending = readPendingRefund();
  if (!pending) {
    return;
  }
  const approval = sdk.followApproval({
    countersignOrigin,
    approval: pending,
    onClosed: offerReopen,
  });
  show("waiting", "");
  settleRefund(pending.order, approval);
}

function settleRefund(order, approval) {
  approval
    .then(
      (result) => {
        recordSettled();
        forgetPendingRefund(result.id);
        return execute(order, result.id);
      },
      (error) => {
        recordSettled();
        forgetPendingRefund(error?.id);
        return explainFailure(order, error);
      },
    )
    .then(({ message, detail, retry }) => {
      show(message, detail);
      if (retry) {
        offerRetry(order);
      }
    });
}

// The SDK cannot tell a popup that the user closed from one that a page with
// Cross-Origin-Opener-Policy cut off, so the text names both.
function offerReopen(pending) {
  detailOutput.textContent =
    "The approval window is closed or out of reach of this page. The request is still open, and the shop keeps waiting for the decision.";
  reopenButton.hidden = false;
  reopenButton.onclick = () => {
    if (pending.reopen()) {
      reopenButton.hidden = true;
      detailOutput.textContent = "";
    } else {
      detailOutput.textContent = "The browser blocked the approval window. Allow popups for this site and try again.";
    }
  };
}

// The retry is a click of its own, so requestApproval can open the popup again.
function offerRetry(order) {
  retryButton.hidden = false;
  retryButton.onclick = () => startRefund(order);
}

// Creates the request and shows the QR code and short link of Countersign's
// remote approval, for a manager who signs in on their own device. No popup
// opens: the SDK follows the request's status stream instead.
// NOTE: unlike the popup flow, this request is not stored for a reload, so
// a reloaded page stops following it and does not show the QR code again.
async function startRemoteRefund(order) {
  show("waiting", "");
  let created;
  try {
    created = await createApproval(order);
  } catch (error) {
    show(`Refund of order ${order} not done: failed`, error.message);
    return;
  }
  showRemoteApproval(created);

  const { message, detail } = await sdk.followApproval({ countersignOrigin, approval: created }).then(
    (result) => {
      recordSettled();
      return execute(order, result.id);
    },
    (error) => {
      recordSettled();
      return explainFailure(order, error);
    },
  );
  hideRemoteApproval();
  show(message, detail);
}

function showRemoteApproval(created) {
  document.getElementById("remote-qr").src = created.remote_qr_url;
  const link = document.getElementById("remote-link");
  link.href = created.remote_url;
  link.textContent = created.remote_url;
  document.getElementById("remote-approval").hidden = false;
}

function hideRemoteApproval() {
  document.getElementById("remote-approval").hidden = true;
  document.getElementById("remote-qr").removeAttribute("src");
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
  rememberPendingRefund(order, body);
  return body;
}

function rememberPendingRefund(order, { id, approval_url, events_url }) {
  sessionStorage.setItem(PENDING_STORAGE_KEY, JSON.stringify({ order, id, approval_url, events_url }));
}

function readPendingRefund() {
  try {
    const pending = JSON.parse(sessionStorage.getItem(PENDING_STORAGE_KEY) ?? "null");
    return typeof pending?.order === "string" && typeof pending.id === "string" ? pending : null;
  } catch {
    return null;
  }
}

// Forgets the stored request only when it is the one that settled, because a
// newer refund may have replaced it in the meantime.
function forgetPendingRefund(id) {
  if (id !== undefined && readPendingRefund()?.id === id) {
    sessionStorage.removeItem(PENDING_STORAGE_KEY);
  }
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
  return {
    message: `Refund of order ${order} not done: ${code}`,
    detail: [error?.message, cause].filter(Boolean).join(" "),
    retry: code === "popup_blocked",
  };
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
  reopenButton.hidden = true;
  retryButton.hidden = true;
}
