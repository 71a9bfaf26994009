import assert from "node:assert/strict";
import { test } from "node:test";

import { CountersignError, followApproval, requestApproval } from "../dist/countersign.js";
import { FakeEventSource, activeIntervalCount, installFakes, settle, sleep } from "./fakes.js";

const ORIGIN = "http://127.0.0.1:18300";
const ID = "abc123";

function created(overrides = {}) {
  return {
    id: ID,
    status: "pending",
    approval_url: `${ORIGIN}/popup/start/${ID}`,
    events_url: `${ORIGIN}/api/v1/approvals/${ID}/events?token=t0k3n`,
    expires_at: "2026-12-04T20:40:00Z",
    ...overrides,
  };
}

/** Starts a request with a `create` that resolves at once and waits until the SDK follows it. */
async function startFollowing(fakeWindow, options = {}) {
  const promise = requestApproval({ countersignOrigin: ORIGIN, create: async () => created(), ...options });
  promise.catch(() => {});
  await settle();
  return { promise, popup: fakeWindow.popup, events: FakeEventSource.instances[0] };
}

/** Waits until `condition()` holds, checking every 20 ms for at most 3 s. */
async function waitFor(condition) {
  const deadline = Date.now() + 3_000;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `condition not met within 3 s: ${condition}`);
    await sleep(20);
  }
}

function resultMessage(popup, overrides = {}) {
  return {
    origin: ORIGIN,
    source: popup,
    data: { type: "countersign:result", id: ID, status: "approved" },
    ...overrides,
  };
}

test("popup opens synchronously before create", () => {
  const fakeWindow = installFakes();
  let createCalls = 0;
  const promise = requestApproval({
    countersignOrigin: ORIGIN,
    create: async () => {
      createCalls += 1;
      return created();
    },
  });
  promise.catch(() => {});

  assert.equal(fakeWindow.openCalls.length, 1);
  assert.equal(fakeWindow.openCalls[0].url, "about:blank");
  assert.match(fakeWindow.openCalls[0].features, /^popup,width=480,height=640,/);
  assert.equal(createCalls, 0);
});

test("blocked popup rejects with popup_blocked", async () => {
  installFakes({ blockPopups: true });
  let createCalls = 0;
  const promise = requestApproval({
    countersignOrigin: ORIGIN,
    create: async () => {
      createCalls += 1;
      return created();
    },
  });

  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof CountersignError);
    assert.equal(error.code, "popup_blocked");
    assert.equal(error.id, undefined);
    return true;
  });
  assert.equal(createCalls, 0);
});

test("popupFeatures is passed to window.open", () => {
  const fakeWindow = installFakes();
  requestApproval({ countersignOrigin: ORIGIN, create: async () => created(), popupFeatures: "popup,width=300" }).catch(() => {});

  assert.equal(fakeWindow.openCalls[0].features, "popup,width=300");
});

test("popup navigates to approval_url after create", async () => {
  const fakeWindow = installFakes();
  const { popup, events } = await startFollowing(fakeWindow);

  assert.deepEqual(popup.navigations, [created().approval_url]);
  assert.equal(events.url, created().events_url);
  assert.equal(fakeWindow.listenerCount("message"), 1);
});

test("locale is added to approval_url", async () => {
  const fakeWindow = installFakes();
  const { popup } = await startFollowing(fakeWindow, { locale: "de" });

  assert.deepEqual(popup.navigations, [`${ORIGIN}/popup/start/${ID}?locale=de`]);
});

test("approved message resolves and cleans up", async () => {
  const fakeWindow = installFakes();
  const { promise, popup, events } = await startFollowing(fakeWindow);

  fakeWindow.postMessageFrom(resultMessage(popup));

  assert.deepEqual(await promise, { id: ID, status: "approved" });
  assert.equal(fakeWindow.listenerCount("message"), 0);
  assert.equal(events.closed, true);
  assert.equal(activeIntervalCount(), 0);
});

test("message filter ignores foreign messages", async () => {
  const fakeWindow = installFakes();
  const { promise, popup } = await startFollowing(fakeWindow);
  let outcome = "pending";
  promise.then(
    () => (outcome = "resolved"),
    () => (outcome = "rejected"),
  );

  const foreign = [
    resultMessage(popup, { origin: "http://localhost:18300" }),
    resultMessage(popup, { origin: `${ORIGIN}.evil.example` }),
    resultMessage(popup, { source: {} }),
    resultMessage(popup, { source: null }),
    resultMessage(popup, { data: { type: "other", id: ID, status: "approved" } }),
    resultMessage(popup, { data: { type: "countersign:result", id: "another-id", status: "approved" } }),
    resultMessage(popup, { data: { type: "countersign:result", id: ID, status: "pending" } }),
    resultMessage(popup, { data: "countersign:result" }),
    resultMessage(popup, { data: null }),
  ];
  for (const message of foreign) {
    fakeWindow.postMessageFrom(message);
  }
  await settle();
  assert.equal(outcome, "pending");

  fakeWindow.postMessageFrom(resultMessage(popup));
  await settle();
  assert.equal(outcome, "resolved");
});

test("message before create resolves is ignored", async () => {
  const fakeWindow = installFakes();
  let resolveCreate;
  const promise = requestApproval({
    countersignOrigin: ORIGIN,
    create: () => new Promise((resolve) => (resolveCreate = resolve)),
  });
  let outcome = "pending";
  promise.then(
    () => (outcome = "resolved"),
    () => (outcome = "rejected"),
  );
  const popup = fakeWindow.popup;

  fakeWindow.postMessageFrom(resultMessage(popup));
  await settle();
  assert.equal(outcome, "pending");

  resolveCreate(created());
  await settle();
  fakeWindow.postMessageFrom(resultMessage(popup));
  await settle();
  assert.equal(outcome, "resolved");
});

test("status stream approved resolves", async () => {
  const fakeWindow = installFakes();
  const { promise, events } = await startFollowing(fakeWindow);

  events.emit("status", { id: ID, status: "pending" });
  events.emit("status", { id: ID, status: "approved" });

  assert.deepEqual(await promise, { id: ID, status: "approved" });
  assert.equal(events.closed, true);
});

test("status stream ignores other ids and bad JSON", async () => {
  const fakeWindow = installFakes();
  const { promise, events } = await startFollowing(fakeWindow);
  let outcome = "pending";
  promise.then(
    () => (outcome = "resolved"),
    () => (outcome = "rejected"),
  );

  events.emit("status", { id: "another-id", status: "approved" });
  events.emit("status", "{not json");
  await settle();
  assert.equal(outcome, "pending");

  events.emit("status", { id: ID, status: "approved" });
  await settle();
  assert.equal(outcome, "resolved");
});

for (const status of ["rejected", "expired"]) {
  test(`${status} status rejects with code ${status}`, async () => {
    const fakeWindow = installFakes();
    const { promise, events } = await startFollowing(fakeWindow);

    events.emit("status", { id: ID, status });

    await assert.rejects(promise, (error) => {
      assert.ok(error instanceof CountersignError);
      assert.equal(error.code, status);
      assert.equal(error.id, ID);
      return true;
    });
    assert.equal(fakeWindow.listenerCount("message"), 0);
    assert.equal(events.closed, true);
  });
}

test("rejected message rejects with code rejected", async () => {
  const fakeWindow = installFakes();
  const { promise, popup } = await startFollowing(fakeWindow);

  fakeWindow.postMessageFrom(resultMessage(popup, { data: { type: "countersign:result", id: ID, status: "rejected" } }));

  await assert.rejects(promise, { name: "CountersignError", code: "rejected", id: ID });
});

test("first final status wins", async () => {
  const fakeWindow = installFakes();
  const { promise, popup, events } = await startFollowing(fakeWindow);

  events.emit("status", { id: ID, status: "approved" });
  fakeWindow.postMessageFrom(resultMessage(popup, { data: { type: "countersign:result", id: ID, status: "rejected" } }));
  events.emit("status", { id: ID, status: "expired" });

  assert.deepEqual(await promise, { id: ID, status: "approved" });
});

test("failed create rejects with failed and closes popup", async () => {
  const fakeWindow = installFakes();
  const cause = new Error("HTTP 500");
  const promise = requestApproval({
    countersignOrigin: ORIGIN,
    create: async () => {
      throw cause;
    },
  });

  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof CountersignError);
    assert.equal(error.code, "failed");
    assert.equal(error.cause, cause);
    return true;
  });
  assert.equal(fakeWindow.popup.closed, true);
  assert.equal(FakeEventSource.instances.length, 0);
});

test("create throwing synchronously rejects with failed", async () => {
  const fakeWindow = installFakes();
  const promise = requestApproval({
    countersignOrigin: ORIGIN,
    create: () => {
      throw new TypeError("not a function");
    },
  });

  await assert.rejects(promise, { code: "failed" });
  assert.equal(fakeWindow.popup.closed, true);
});

const invalidResponses = {
  "missing id": created({ id: undefined }),
  "empty id": created({ id: "" }),
  "approval_url on another origin": created({ approval_url: "http://evil.example/popup/start/abc123" }),
  "events_url on another origin": created({ events_url: "http://evil.example/events" }),
  "relative approval_url": created({ approval_url: "/popup/start/abc123" }),
  "problem+json body": { type: "urn:countersign:problem:unauthorized", status: 401, code: "unauthorized" },
  "null body": null,
};

for (const [name, response] of Object.entries(invalidResponses)) {
  test(`create response with ${name} fails`, async () => {
    const fakeWindow = installFakes();
    const promise = requestApproval({ countersignOrigin: ORIGIN, create: async () => response });

    await assert.rejects(promise, { code: "failed" });
    assert.equal(fakeWindow.popup.closed, true);
    assert.deepEqual(fakeWindow.popup.navigations, []);
    assert.equal(FakeEventSource.instances.length, 0);
  });
}

test("countersignOrigin with a path still matches", async () => {
  const fakeWindow = installFakes();
  const { promise, popup } = await startFollowing(fakeWindow, { countersignOrigin: `${ORIGIN}/` });

  fakeWindow.postMessageFrom(resultMessage(popup));

  assert.deepEqual(await promise, { id: ID, status: "approved" });
});

test("invalid countersignOrigin fails without popup", async () => {
  const fakeWindow = installFakes();

  await assert.rejects(requestApproval({ countersignOrigin: "not a url", create: async () => created() }), { code: "failed" });
  assert.equal(fakeWindow.openCalls.length, 0);
});

test("popup closed before create resolves still follows", async () => {
  const fakeWindow = installFakes();
  let resolveCreate;
  const closedCalls = [];
  const promise = requestApproval({
    countersignOrigin: ORIGIN,
    create: () => new Promise((resolve) => (resolveCreate = resolve)),
    onClosed: (approval) => closedCalls.push(approval),
  });

  fakeWindow.popup.close();
  await settle();
  resolveCreate(created());
  await waitFor(() => closedCalls.length === 1);

  assert.deepEqual(fakeWindow.popup.navigations, [], "a closed popup is not navigated");
  assert.equal(closedCalls[0].id, ID);
  assert.equal(FakeEventSource.instances.length, 1);
  FakeEventSource.instances[0].emit("status", { id: ID, status: "approved" });
  assert.deepEqual(await promise, { id: ID, status: "approved" });
});

test("fatal stream error fails, reconnect does not", async () => {
  const fakeWindow = installFakes();
  const { promise, popup, events } = await startFollowing(fakeWindow);
  let outcome = "pending";
  promise.catch(() => (outcome = "rejected"));

  events.fail(0);
  await settle();
  assert.equal(outcome, "pending");

  events.fail(2);
  await assert.rejects(promise, { code: "failed", id: ID });
  assert.equal(popup.closed, true);
  assert.equal(fakeWindow.listenerCount("message"), 0);
});

test("stream closed by page unload keeps pending", async () => {
  const fakeWindow = installFakes();
  const { promise, events } = await startFollowing(fakeWindow);
  let outcome = "pending";
  promise.then(
    () => (outcome = "resolved"),
    () => (outcome = "rejected"),
  );

  fakeWindow.dispatch("pagehide");
  events.fail(2);
  await settle();

  assert.equal(outcome, "pending");
});

test("abort rejects with aborted and cleans up", async () => {
  const fakeWindow = installFakes();
  const controller = new AbortController();
  const { promise, popup, events } = await startFollowing(fakeWindow, { signal: controller.signal });

  const reason = new Error("cashier cancelled");
  controller.abort(reason);

  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof CountersignError);
    assert.equal(error.code, "aborted");
    assert.equal(error.id, ID);
    assert.equal(error.cause, reason);
    return true;
  });
  assert.equal(popup.closed, true);
  assert.equal(events.closed, true);
  assert.equal(fakeWindow.listenerCount("message"), 0);
  assert.equal(fakeWindow.listenerCount("pagehide"), 0);
  assert.equal(activeIntervalCount(), 0);
});

test("abort during create closes popup", async () => {
  const fakeWindow = installFakes();
  const controller = new AbortController();
  let resolveCreate;
  const promise = requestApproval({
    countersignOrigin: ORIGIN,
    create: () => new Promise((resolve) => (resolveCreate = resolve)),
    signal: controller.signal,
  });

  controller.abort();
  await assert.rejects(promise, { code: "aborted", id: undefined });
  resolveCreate(created());
  await settle();

  assert.equal(fakeWindow.popup.closed, true);
  assert.deepEqual(fakeWindow.popup.navigations, []);
  assert.equal(FakeEventSource.instances.length, 0, "a request settled during create must not open the stream");
  assert.equal(fakeWindow.listenerCount("message"), 0);
});

test("already aborted signal opens no popup", async () => {
  const fakeWindow = installFakes();
  const controller = new AbortController();
  controller.abort();

  await assert.rejects(requestApproval({ countersignOrigin: ORIGIN, create: async () => created(), signal: controller.signal }), (error) => {
    assert.equal(error.code, "aborted");
    assert.equal(error.cause?.name, "AbortError");
    return true;
  });
  assert.equal(fakeWindow.openCalls.length, 0);
});

test("timeout rejects with timeout and cleans up", async () => {
  const fakeWindow = installFakes();
  const { promise, popup, events } = await startFollowing(fakeWindow, { timeout: 30 });

  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof CountersignError);
    assert.equal(error.code, "timeout");
    assert.equal(error.id, ID);
    return true;
  });
  assert.equal(popup.closed, true);
  assert.equal(events.closed, true);
  assert.equal(fakeWindow.listenerCount("message"), 0);
  assert.equal(activeIntervalCount(), 0);
});

test("settled request clears its timeout", async () => {
  const fakeWindow = installFakes();
  const { promise, popup } = await startFollowing(fakeWindow, { timeout: 30 });

  fakeWindow.postMessageFrom(resultMessage(popup));
  assert.deepEqual(await promise, { id: ID, status: "approved" });
  await sleep(60);

  assert.equal(popup.closed, false, "the timeout fired after the request settled");
});

test("each popup gets its own window name", () => {
  const fakeWindow = installFakes();
  requestApproval({ countersignOrigin: ORIGIN, create: async () => created() }).catch(() => {});
  requestApproval({ countersignOrigin: ORIGIN, create: async () => created() }).catch(() => {});

  const [first, second] = fakeWindow.openCalls.map((call) => call.target);
  assert.match(first, /^countersign-/);
  assert.match(second, /^countersign-/);
  assert.notEqual(first, second);
});

test("two requests do not settle each other", async () => {
  const fakeWindow = installFakes();
  const otherId = "def456";
  const first = requestApproval({ countersignOrigin: ORIGIN, create: async () => created() });
  const second = requestApproval({
    countersignOrigin: ORIGIN,
    create: async () => created({ id: otherId, events_url: `${ORIGIN}/api/v1/approvals/${otherId}/events?token=x` }),
  });
  let secondOutcome = "pending";
  second.then(
    () => (secondOutcome = "resolved"),
    () => (secondOutcome = "rejected"),
  );
  await settle();
  const [firstPopup, secondPopup] = fakeWindow.popups;
  const [firstEvents, secondEvents] = FakeEventSource.instances;

  // The first request's message, also when it claims the other id, must not settle the second.
  fakeWindow.postMessageFrom(resultMessage(firstPopup, { data: { type: "countersign:result", id: otherId, status: "approved" } }));
  fakeWindow.postMessageFrom(resultMessage(firstPopup));
  firstEvents.emit("status", { id: ID, status: "approved" });
  secondEvents.emit("status", { id: ID, status: "rejected" });
  assert.deepEqual(await first, { id: ID, status: "approved" });
  await settle();
  assert.equal(secondOutcome, "pending");

  fakeWindow.postMessageFrom(resultMessage(secondPopup, { data: { type: "countersign:result", id: otherId, status: "approved" } }));
  assert.deepEqual(await second, { id: otherId, status: "approved" });
});

test("closed popup calls onClosed and keeps pending", async () => {
  const fakeWindow = installFakes();
  const closedCalls = [];
  const { promise, popup, events } = await startFollowing(fakeWindow, { onClosed: (approval) => closedCalls.push(approval) });
  let outcome = "pending";
  promise.then(
    () => (outcome = "resolved"),
    () => (outcome = "rejected"),
  );

  popup.close();
  const closedAt = Date.now();
  await waitFor(() => closedCalls.length === 1);

  assert.ok(Date.now() - closedAt < 2_000, "onClosed must run within 2 s");
  assert.equal(closedCalls[0].id, ID);
  assert.equal(outcome, "pending");
  assert.equal(events.closed, false);
  await sleep(600);
  assert.equal(closedCalls.length, 1, "onClosed runs once per closed popup");
});

test("reopen opens approval_url and accepts its message", async () => {
  const fakeWindow = installFakes();
  const closedCalls = [];
  const { promise, popup } = await startFollowing(fakeWindow, { onClosed: (approval) => closedCalls.push(approval) });
  popup.close();
  await waitFor(() => closedCalls.length === 1);

  assert.equal(closedCalls[0].reopen(), true);
  const reopened = fakeWindow.popup;
  assert.notEqual(reopened, popup);
  assert.equal(reopened.url, created().approval_url);
  assert.notEqual(reopened.name, popup.name);

  // A second reopen while the new popup is open focuses it.
  assert.equal(closedCalls[0].reopen(), true);
  assert.equal(fakeWindow.popups.length, 2);
  assert.equal(reopened.focusCount, 1);

  reopened.close();
  await waitFor(() => closedCalls.length === 2);

  fakeWindow.postMessageFrom(resultMessage(reopened));
  assert.deepEqual(await promise, { id: ID, status: "approved" });
  assert.equal(closedCalls[0].reopen(), false, "a settled request cannot reopen");
});

test("reopen returns false when blocked", async () => {
  const fakeWindow = installFakes();
  const closedCalls = [];
  const { promise, popup } = await startFollowing(fakeWindow, { onClosed: (approval) => closedCalls.push(approval) });
  promise.catch(() => {});
  popup.close();
  await waitFor(() => closedCalls.length === 1);

  fakeWindow.blockPopups = true;
  assert.equal(closedCalls[0].reopen(), false);
});

test("followApproval follows without a popup", async () => {
  const fakeWindow = installFakes();
  const closedCalls = [];
  const promise = followApproval({ countersignOrigin: ORIGIN, approval: created(), onClosed: (approval) => closedCalls.push(approval) });
  await waitFor(() => closedCalls.length === 1);

  assert.equal(fakeWindow.openCalls.length, 0);
  const [events] = FakeEventSource.instances;
  assert.equal(events.url, created().events_url);

  // A message from a window that this call did not open is ignored.
  fakeWindow.postMessageFrom(resultMessage({}));
  await settle();
  events.emit("status", { id: ID, status: "approved" });
  assert.deepEqual(await promise, { id: ID, status: "approved" });
  assert.equal(fakeWindow.listenerCount("message"), 0);
  assert.equal(activeIntervalCount(), 0);
});

test("followApproval checks the links", async () => {
  installFakes();

  await assert.rejects(
    followApproval({ countersignOrigin: ORIGIN, approval: created({ events_url: "http://evil.example/events" }) }),
    { code: "failed" },
  );
  assert.equal(FakeEventSource.instances.length, 0);
});

test("CountersignError carries code, id and name", () => {
  const error = new CountersignError("rejected", "The approval request was rejected.", ID);

  assert.ok(error instanceof Error);
  assert.equal(error.name, "CountersignError");
  assert.equal(error.code, "rejected");
  assert.equal(error.id, ID);
  assert.equal(error.message, "The approval request was rejected.");
  assert.equal("cause" in error, false);
});
