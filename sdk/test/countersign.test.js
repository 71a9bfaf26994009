import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { gzipSync } from "node:zlib";

import { CountersignError, requestApproval } from "../dist/countersign.js";
import { FakeEventSource, installFakes, settle } from "./fakes.js";

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

test("approved message resolves and cleans up", async () => {
  const fakeWindow = installFakes();
  const { promise, popup, events } = await startFollowing(fakeWindow);

  fakeWindow.postMessageFrom(resultMessage(popup));

  assert.deepEqual(await promise, { id: ID, status: "approved" });
  assert.equal(fakeWindow.listenerCount("message"), 0);
  assert.equal(events.closed, true);
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

test("popup closed before create resolves fails", async () => {
  const fakeWindow = installFakes();
  let resolveCreate;
  const promise = requestApproval({
    countersignOrigin: ORIGIN,
    create: () => new Promise((resolve) => (resolveCreate = resolve)),
  });

  fakeWindow.popup.close();
  await settle();
  resolveCreate(created());

  await assert.rejects(promise, { code: "failed" });
  assert.equal(FakeEventSource.instances.length, 0);
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

test("abort rejects with the signal's reason", async () => {
  const fakeWindow = installFakes();
  const controller = new AbortController();
  const { promise, popup, events } = await startFollowing(fakeWindow, { signal: controller.signal });

  const reason = new Error("cashier cancelled");
  controller.abort(reason);

  await assert.rejects(promise, (error) => error === reason);
  assert.equal(popup.closed, true);
  assert.equal(events.closed, true);
  assert.equal(fakeWindow.listenerCount("message"), 0);
});

test("already aborted signal opens no popup", async () => {
  const fakeWindow = installFakes();
  const controller = new AbortController();
  controller.abort();

  await assert.rejects(requestApproval({ countersignOrigin: ORIGIN, create: async () => created(), signal: controller.signal }), {
    name: "AbortError",
  });
  assert.equal(fakeWindow.openCalls.length, 0);
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

test("built file stays under 3 KB gzipped", () => {
  // tsc output keeps comments and whitespace, so a minifier only makes it smaller.
  const built = readFileSync(new URL("../dist/countersign.js", import.meta.url));

  assert.ok(gzipSync(built, { level: 9 }).length < 3072);
});
