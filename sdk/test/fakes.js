// Small stand-ins for the browser globals that the SDK uses: `window` with
// `open` and message listeners, the popup window, and `EventSource`.

export class FakePopup {
  constructor(url, name) {
    this.url = url;
    this.name = name;
    this.closed = false;
    this.focusCount = 0;
    this.navigations = [];
    this.location = { replace: (target) => this.navigations.push(target) };
  }

  close() {
    this.closed = true;
  }

  focus() {
    this.focusCount += 1;
  }
}

export class FakeWindow {
  constructor({ blockPopups = false } = {}) {
    this.blockPopups = blockPopups;
    this.openCalls = [];
    this.popup = undefined;
    this.popups = [];
    this.listeners = new Map();
    this.screenX = 0;
    this.screenY = 0;
    this.outerWidth = 1280;
    this.outerHeight = 800;
  }

  open(url, target, features) {
    this.openCalls.push({ url, target, features });
    if (this.blockPopups) return null;
    this.popup = new FakePopup(url, target);
    this.popups.push(this.popup);
    return this.popup;
  }

  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
  }

  removeEventListener(type, listener) {
    this.listeners.get(type)?.delete(listener);
  }

  listenerCount(type) {
    return this.listeners.get(type)?.size ?? 0;
  }

  /** Dispatches an event of `type`, for example `pagehide`, to the window's listeners. */
  dispatch(type, event = { type }) {
    for (const listener of [...(this.listeners.get(type) ?? [])]) {
      listener(event);
    }
  }

  /** Delivers a `message` event the way `postMessage` from another window would. */
  postMessageFrom({ origin, source, data }) {
    for (const listener of [...(this.listeners.get("message") ?? [])]) {
      listener({ origin, source, data });
    }
  }
}

export class FakeEventSource {
  static instances = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.closed = false;
    this.listeners = new Map();
    FakeEventSource.instances.push(this);
  }

  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
  }

  close() {
    this.closed = true;
    this.readyState = 2;
  }

  /** Delivers a server event, for example `emit("status", {id, status})`. */
  emit(type, data) {
    const event = { type, data: typeof data === "string" ? data : JSON.stringify(data) };
    for (const listener of [...(this.listeners.get(type) ?? [])]) {
      listener(event);
    }
  }

  /** Delivers an `error` event with the given readyState (0 reconnecting, 2 closed for good). */
  fail(readyState) {
    this.readyState = readyState;
    this.emit("error", "");
  }
}

// The SDK checks `popup.closed` on an interval while a request is pending.
// Tests leave some requests pending, so the interval must not keep Node's
// event loop alive, and the tests check that a settled request cleared it.
const activeIntervals = new Set();
const nodeSetInterval = globalThis.setInterval;
const nodeClearInterval = globalThis.clearInterval;
globalThis.setInterval = (callback, ms, ...args) => {
  const handle = nodeSetInterval(callback, ms, ...args).unref();
  activeIntervals.add(handle);
  return handle;
};
globalThis.clearInterval = (handle) => {
  activeIntervals.delete(handle);
  nodeClearInterval(handle);
};

/** Returns how many intervals are set and not cleared. */
export function activeIntervalCount() {
  return activeIntervals.size;
}

/** Waits `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Installs fresh fakes as globals and returns them. */
export function installFakes(options) {
  const fakeWindow = new FakeWindow(options);
  globalThis.window = fakeWindow;
  globalThis.EventSource = FakeEventSource;
  FakeEventSource.instances = [];
  for (const handle of activeIntervals) nodeClearInterval(handle);
  activeIntervals.clear();
  return fakeWindow;
}

/** Waits until pending promise callbacks have run. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}
