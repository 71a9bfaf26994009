// Tests of useCountersign (dist/react.js) with react-test-renderer and the
// fake window and EventSource of fakes.js.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { afterEach, test } from "node:test";

import { act, createElement, StrictMode } from "react";
import TestRenderer from "react-test-renderer";

import { CountersignError } from "../dist/countersign.js";
import { useCountersign } from "../dist/react.js";
import { activeIntervalCount, FakeEventSource, installFakes, settle, sleep } from "./fakes.js";

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

// react-test-renderer 19 logs a deprecation warning on every create(). It is
// still the smallest renderer that runs hooks without a DOM.
const originalConsoleError = console.error;
console.error = (...args) => {
  if (typeof args[0] === "string" && args[0].includes("react-test-renderer is deprecated")) return;
  originalConsoleError(...args);
};

const ORIGIN = "http://127.0.0.1:18300";
const ID = "abc123";

function created(id = ID) {
  return {
    id,
    status: "pending",
    approval_url: `${ORIGIN}/popup/start/${id}`,
    events_url: `${ORIGIN}/api/v1/approvals/${id}/events?token=t0k3n`,
  };
}

// Renderers of the running test, unmounted after it so that no request keeps
// the SDK's popup check interval running.
const mounted = new Set();

afterEach(async () => {
  await act(async () => {
    for (const renderer of mounted) renderer.unmount();
  });
  mounted.clear();
});

/**
 * Renders a component that calls useCountersign with `options` and returns
 * `{ latest, renderer, renders }`: `latest()` is the hook's latest result.
 */
async function renderHook(options = { countersignOrigin: ORIGIN }, { strict = false } = {}) {
  const results = [];
  function Probe(props) {
    results.push(useCountersign(props.options));
    return null;
  }
  const element = createElement(Probe, { options });
  let renderer;
  await act(async () => {
    renderer = TestRenderer.create(strict ? createElement(StrictMode, null, element) : element);
  });
  mounted.add(renderer);
  return { latest: () => results.at(-1), renderer, renders: results };
}

/**
 * Calls `request` the way a click handler does, lets the SDK follow the
 * created approval and returns `{ promise }`. The promise is wrapped because
 * an async function that returns a promise waits for it.
 */
async function click(hook, create = async () => created()) {
  let promise;
  await act(async () => {
    promise = hook.latest().request(create);
    promise.catch(() => {});
    await settle();
  });
  return { promise };
}

test("hook starts idle", async () => {
  installFakes();
  const hook = await renderHook();

  assert.equal(hook.latest().status, "idle");
  assert.equal(hook.latest().pending, false);
  assert.equal(hook.latest().result, null);
  assert.equal(hook.latest().error, null);
});

test("request opens popup before create", async () => {
  const fakeWindow = installFakes();
  const hook = await renderHook();
  let openCallsWhenCreated = -1;

  await act(async () => {
    hook.latest().request(() => {
      openCallsWhenCreated = fakeWindow.openCalls.length;
      return created();
    });
    // No await happened yet: the popup must already be open.
    assert.equal(fakeWindow.openCalls.length, 1);
    await settle();
  });

  assert.equal(openCallsWhenCreated, 1);
  assert.equal(hook.latest().status, "pending");
  assert.equal(hook.latest().pending, true);
});

test("approval sets approved and result", async () => {
  installFakes();
  const hook = await renderHook();
  const { promise } = await click(hook);

  await act(async () => {
    FakeEventSource.instances[0].emit("status", { id: ID, status: "approved" });
    await settle();
  });

  assert.deepEqual(await promise, { id: ID, status: "approved" });
  assert.equal(hook.latest().status, "approved");
  assert.equal(hook.latest().pending, false);
  assert.deepEqual(hook.latest().result, { id: ID, status: "approved" });
  assert.equal(hook.latest().error, null);
});

test("rejection sets status and error", async () => {
  installFakes();
  const hook = await renderHook();
  const { promise } = await click(hook);

  await act(async () => {
    FakeEventSource.instances[0].emit("status", { id: ID, status: "rejected" });
    await settle();
  });

  await assert.rejects(promise, { code: "rejected" });
  assert.equal(hook.latest().status, "rejected");
  assert.ok(hook.latest().error instanceof CountersignError);
  assert.equal(hook.latest().error.id, ID);
  assert.equal(hook.latest().result, null);
});

test("expiry sets status expired", async () => {
  installFakes();
  const hook = await renderHook();
  const { promise } = await click(hook);

  await act(async () => {
    FakeEventSource.instances[0].emit("status", { id: ID, status: "expired" });
    await settle();
  });

  await assert.rejects(promise, { code: "expired" });
  assert.equal(hook.latest().status, "expired");
});

test("blocked popup sets popup_blocked", async () => {
  installFakes({ blockPopups: true });
  const hook = await renderHook();
  let createCalls = 0;
  const { promise } = await click(hook, () => {
    createCalls += 1;
    return created();
  });

  await assert.rejects(promise, { code: "popup_blocked" });
  assert.equal(createCalls, 0);
  assert.equal(hook.latest().status, "popup_blocked");
  assert.equal(hook.latest().pending, false);
});

test("failing create sets failed with cause", async () => {
  const fakeWindow = installFakes();
  const hook = await renderHook();
  const backendError = new Error("the shop answered HTTP 502");
  const { promise } = await click(hook, async () => {
    throw backendError;
  });

  await assert.rejects(promise, { code: "failed" });
  assert.equal(hook.latest().status, "failed");
  assert.equal(hook.latest().error.cause, backendError);
  assert.equal(fakeWindow.popup.closed, true);
});

test("cancel closes popup and sets aborted", async () => {
  const fakeWindow = installFakes();
  const hook = await renderHook();
  const { promise } = await click(hook);

  await act(async () => {
    hook.latest().cancel();
    await settle();
  });

  await assert.rejects(promise, { code: "aborted" });
  assert.equal(fakeWindow.popup.closed, true);
  assert.equal(FakeEventSource.instances[0].closed, true);
  assert.equal(hook.latest().status, "aborted");
  assert.equal(hook.latest().error.code, "aborted");
  assert.equal(hook.latest().error.cause.name, "AbortError");
  assert.equal(hook.latest().pending, false);
});

test("cancel without request does nothing", async () => {
  installFakes();
  const hook = await renderHook();
  const rendersBefore = hook.renders.length;

  await act(async () => {
    hook.latest().cancel();
  });

  assert.equal(hook.latest().status, "idle");
  assert.equal(hook.renders.length, rendersBefore);
});

test("newer request replaces pending one", async () => {
  installFakes();
  const hook = await renderHook();
  const { promise: first } = await click(hook, async () => created("first"));
  const firstEvents = FakeEventSource.instances[0];
  const { promise: second } = await click(hook, async () => created("second"));
  const secondEvents = FakeEventSource.instances[1];

  await assert.rejects(first, { code: "aborted" });
  assert.equal(firstEvents.closed, true);
  assert.equal(hook.latest().status, "pending");

  await act(async () => {
    secondEvents.emit("status", { id: "second", status: "approved" });
    await settle();
  });

  assert.deepEqual(await second, { id: "second", status: "approved" });
  assert.equal(hook.latest().status, "approved");
  assert.equal(hook.latest().result.id, "second");
});

test("unmount cancels request and closes popup", async () => {
  const fakeWindow = installFakes();
  const hook = await renderHook();
  const { promise } = await click(hook);
  const rendersBefore = hook.renders.length;

  await act(async () => {
    hook.renderer.unmount();
    await settle();
  });

  mounted.delete(hook.renderer);

  await assert.rejects(promise, { code: "aborted" });
  assert.equal(fakeWindow.popup.closed, true);
  assert.equal(FakeEventSource.instances[0].closed, true);
  assert.equal(fakeWindow.listenerCount("message"), 0);
  assert.equal(activeIntervalCount(), 0);
  assert.equal(hook.renders.length, rendersBefore);
});

test("closed popup sets popupClosed and reopens", async () => {
  const fakeWindow = installFakes();
  const hook = await renderHook();
  await click(hook);
  const firstPopup = fakeWindow.popup;

  // The SDK checks popup.closed every 500 ms.
  await act(async () => {
    firstPopup.close();
    await sleep(700);
  });

  assert.equal(hook.latest().popupClosed, true);
  assert.equal(hook.latest().status, "pending");

  let reopened;
  await act(async () => {
    reopened = hook.latest().reopen();
  });

  assert.equal(reopened, true);
  assert.equal(fakeWindow.openCalls.length, 2);
  assert.equal(fakeWindow.openCalls[1].url, `${ORIGIN}/popup/start/${ID}`);
  assert.equal(hook.latest().popupClosed, false);
});

test("reopen without closed popup returns false", async () => {
  const fakeWindow = installFakes();
  const hook = await renderHook();
  await click(hook);

  assert.equal(hook.latest().reopen(), false);
  assert.equal(fakeWindow.openCalls.length, 1);
});

test("timeout option sets status timeout", async () => {
  installFakes();
  const hook = await renderHook({ countersignOrigin: ORIGIN, timeout: 50 });
  const { promise } = await click(hook);

  await act(async () => {
    await sleep(100);
  });

  await assert.rejects(promise, { code: "timeout" });
  assert.equal(hook.latest().status, "timeout");
});

test("strict mode keeps request working", async () => {
  installFakes();
  const hook = await renderHook({ countersignOrigin: ORIGIN }, { strict: true });
  const { promise } = await click(hook);

  await act(async () => {
    FakeEventSource.instances[0].emit("status", { id: ID, status: "approved" });
    await settle();
  });

  assert.deepEqual(await promise, { id: ID, status: "approved" });
  assert.equal(hook.latest().status, "approved");
});

test("popupFeatures reach window.open", async () => {
  const fakeWindow = installFakes();
  const hook = await renderHook({ countersignOrigin: ORIGIN, popupFeatures: "popup,width=600,height=700" });
  await click(hook);

  assert.equal(fakeWindow.openCalls[0].features, "popup,width=600,height=700");
});

test("invalid countersignOrigin sets failed", async () => {
  const fakeWindow = installFakes();
  const hook = await renderHook({ countersignOrigin: "not a url" });
  const { promise } = await click(hook);

  await assert.rejects(promise, { code: "failed" });
  assert.equal(fakeWindow.openCalls.length, 0);
  assert.equal(hook.latest().status, "failed");
});

test("core entry imports no React", () => {
  const core = readFileSync(new URL("../dist/countersign.js", import.meta.url), "utf8");

  assert.doesNotMatch(core, /from\s+["']react["']/);
});

test("package exports react entry", () => {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

  assert.deepEqual(manifest.exports["./react"], { types: "./dist/react.d.ts", default: "./dist/react.js" });
  assert.equal(manifest.dependencies, undefined);
  assert.equal(manifest.peerDependenciesMeta.react.optional, true);
});
