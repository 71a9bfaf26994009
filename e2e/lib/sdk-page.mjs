// Browser helpers for the SDK tests. Init scripts record what the SDK does in
// the shop's page (popups, status streams, message listeners, result
// messages) or make the browser block a popup. The popup steps here do not
// rely on `window.opener`.
import assert from "node:assert/strict";
import { signInAtKeycloak } from "./keycloak.mjs";

/**
 * Makes the first `window.open` of each page of `origin` in `context` return
 * null, as a popup blocker does. Later calls open popups as usual.
 */
export async function blockFirstPopup(context, origin) {
  await context.addInitScript((pageOrigin) => {
    if (location.origin !== pageOrigin) return;
    const open = window.open.bind(window);
    let blocked = false;
    window.open = (...args) => {
      if (!blocked) {
        blocked = true;
        return null;
      }
      return open(...args);
    };
  }, origin);
}

/**
 * Records, in every page of `origin` in `context`, the SDK's side of the
 * channel in `window.__channels`: the `window.open` calls (`url`, `name`),
 * every `EventSource`, the `message` listeners on `window` that are still
 * registered, and each `countersign:result` message that reached the page.
 */
export async function recordChannels(context, origin) {
  await context.addInitScript((pageOrigin) => {
    if (location.origin !== pageOrigin) return;
    const channels = { opened: [], eventSources: [], messageListeners: new Set(), resultMessages: [] };
    window.__channels = channels;

    const open = window.open.bind(window);
    window.open = (url, name, features) => {
      channels.opened.push({ url: String(url), name: String(name) });
      return open(url, name, features);
    };

    const NativeEventSource = window.EventSource;
    window.EventSource = class extends NativeEventSource {
      constructor(...args) {
        super(...args);
        channels.eventSources.push(this);
      }
    };

    const addListener = window.addEventListener.bind(window);
    const removeListener = window.removeEventListener.bind(window);
    window.addEventListener = (type, listener, options) => {
      if (type === "message") channels.messageListeners.add(listener);
      return addListener(type, listener, options);
    };
    window.removeEventListener = (type, listener, options) => {
      if (type === "message") channels.messageListeners.delete(listener);
      return removeListener(type, listener, options);
    };

    addListener("message", (event) => {
      if (event.data?.type === "countersign:result") {
        channels.resultMessages.push({ origin: event.origin, data: event.data });
      }
    });
  }, origin);
}

/**
 * Returns a summary of `window.__channels` in `page`: `opened`,
 * `eventSourceStates` (readyState of each EventSource: 0 connecting, 1 open,
 * 2 closed), `messageListenerCount` and `resultMessages`.
 */
export async function readChannels(page) {
  return page.evaluate(() => {
    const channels = window.__channels;
    return {
      opened: channels.opened,
      eventSourceStates: channels.eventSources.map((source) => source.readyState),
      messageListenerCount: channels.messageListeners.size,
      resultMessages: channels.resultMessages,
    };
  });
}

/**
 * Signs `user` in inside the approval popup and clicks Approve. Unlike
 * `decideInPopup` it does not wait for the popup to close, because a popup
 * without `window.opener` may stay open. Returns `{ clickedAt }`, the
 * `Date.now()` right before the click.
 */
export async function approveInPopup(popup, user) {
  await signInAtKeycloak(popup, user);
  const button = popup.locator('[name="decision"][value="approve"]');
  await button.waitFor({ state: "visible" });
  const isDecisionResponse = (response) =>
    response.request().method() === "POST" && new URL(response.url()).pathname === "/popup/decision";
  const clickedAt = Date.now();
  const [response] = await Promise.all([popup.waitForResponse(isDecisionResponse), button.click()]);
  assert.equal(response.status(), 200, `POST /popup/decision returned HTTP ${response.status()}`);
  return { clickedAt };
}

/** Waits until `#refund-status` shows a final message, not `waiting`, and returns it. */
export async function settledRefundStatus(page, timeout = 15_000) {
  await page.waitForFunction(
    () => {
      const text = document.getElementById("refund-status")?.textContent.trim() ?? "";
      return text !== "" && text !== "waiting";
    },
    null,
    { timeout },
  );
  return (await page.locator("#refund-status").innerText()).trim();
}
