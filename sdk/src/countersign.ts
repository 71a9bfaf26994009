/**
 * Countersign browser SDK: opens the approval popup from a click handler and
 * follows the approval request until the approver decides.
 *
 * The outcome that this SDK reports is a notification only. The host backend
 * must consume the approval (`POST /api/v1/approvals/{id}/consume`) and act
 * only on the decision that the consume call returns.
 */

/** Reason why `requestApproval` or `followApproval` rejected. */
export type CountersignErrorCode = "popup_blocked" | "rejected" | "expired" | "failed" | "aborted" | "timeout";

/** Error with a stable `code`, and the approval `id` once one is known. */
export class CountersignError extends Error {
  readonly code: CountersignErrorCode;
  readonly id: string | undefined;

  constructor(code: CountersignErrorCode, message: string, id?: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "CountersignError";
    this.code = code;
    this.id = id;
  }
}

/** The fields of a create response that the SDK needs to follow a request. */
export interface ApprovalLinks {
  id: string;
  approval_url: string;
  events_url: string;
}

/** Response of `POST /api/v1/approvals`, passed through by the host backend. */
export interface CreatedApproval extends ApprovalLinks {
  status?: string;
  expires_at?: string;
}

/** Handle of a request that is still pending, passed to `onClosed`. */
export interface PendingApproval {
  readonly id: string;
  /**
   * Opens the approval page in a new popup, or focuses the popup that is
   * still open. Call it synchronously inside a click handler. Returns false
   * when the browser blocked the popup or the request has settled.
   */
  reopen(): boolean;
}

export interface FollowOptions {
  /** Origin of the Countersign service, for example `http://127.0.0.1:18300`. */
  countersignOrigin: string;
  /** Features for `window.open`. The default is a 480 × 640 popup centred on the window. */
  popupFeatures?: string;
  /** Signal whose abort closes the popups and rejects with code `aborted` (the cause is `signal.reason`). */
  signal?: AbortSignal;
  /** Milliseconds after the call at which the SDK closes the popups and rejects with code `timeout`. */
  timeout?: number;
  /**
   * Language of the popup pages and of the IdP's login page, for example
   * `de`; without it, Countersign follows the browser's `Accept-Language`.
   */
  locale?: string;
  /**
   * Called when no popup of the request is reachable: the user closed it, a
   * page with Cross-Origin-Opener-Policy cut it off from this window (both
   * read as `popup.closed`), or `followApproval` started without one. The
   * request stays pending and the status stream still settles the promise.
   */
  onClosed?: (approval: PendingApproval) => void;
}

export interface RequestApprovalOptions extends FollowOptions {
  /** Callback that makes the host backend create the approval request. Called after the popup is open. */
  create: () => CreatedApproval | PromiseLike<CreatedApproval>;
}

export interface FollowApprovalOptions extends FollowOptions {
  /** The request to follow, as the create response returned it. */
  approval: ApprovalLinks;
}

export interface ApprovalResult {
  id: string;
  status: "approved";
}

const RESULT_MESSAGE_TYPE = "countersign:result";
const EVENT_SOURCE_CLOSED = 2;
/** Interval of the `popup.closed` check, so `onClosed` runs within about half a second. */
const CLOSED_CHECK_MS = 500;

let popupCount = 0;

/**
 * Opens the approval popup, creates the request through `options.create` and
 * resolves when the request is approved.
 *
 * Call it synchronously inside a click handler: browsers block `window.open`
 * after an `await`. The first final status from either channel wins: a
 * `postMessage` from the popup (origin, source and id checked) or the
 * request's Server-Sent Events stream.
 */
export function requestApproval(options: RequestApprovalOptions): Promise<ApprovalResult> {
  const origin = checkStart(options);
  if (origin instanceof CountersignError) {
    return Promise.reject(origin);
  }
  const popup = openPopup("about:blank", options.popupFeatures);
  if (!popup) {
    return Promise.reject(
      new CountersignError("popup_blocked", "The browser blocked the approval popup. Allow popups for this site and try again."),
    );
  }
  const created = Promise.resolve()
    .then(() => options.create())
    .then(undefined, (error: unknown) => {
      throw new CountersignError("failed", "Creating the approval request failed.", undefined, error);
    });
  return track(options, origin, popup, created);
}

/**
 * Follows a request that already exists, for example after a reload of the
 * page that created it, without opening a popup. `onClosed` runs at once, so
 * the page can offer `reopen()` from a click.
 */
export function followApproval(options: FollowApprovalOptions): Promise<ApprovalResult> {
  const origin = checkStart(options);
  if (origin instanceof CountersignError) {
    return Promise.reject(origin);
  }
  return track(options, origin, undefined, Promise.resolve(options.approval));
}

/** Returns the origin of `countersignOrigin`, or the error to reject with before anything opens. */
function checkStart(options: FollowOptions): string | CountersignError {
  const { signal } = options;
  if (signal?.aborted) {
    return new CountersignError("aborted", "The approval was cancelled.", undefined, signal.reason);
  }
  try {
    return new URL(options.countersignOrigin).origin;
  } catch (error) {
    return new CountersignError("failed", `countersignOrigin is not a valid URL: ${options.countersignOrigin}`, undefined, error);
  }
}

/**
 * Opens a popup under a window name of its own. A shared name would make a
 * second request, or a reopen after a reload, navigate a popup that is
 * already in use.
 */
function openPopup(url: string, features: string | undefined): Window | null {
  popupCount += 1;
  const name = `countersign-${popupCount}-${Math.random().toString(36).slice(2)}`;
  try {
    return window.open(url, name, features ?? centredPopupFeatures());
  } catch {
    return null;
  }
}

function track(
  options: FollowOptions,
  origin: string,
  firstPopup: Window | undefined,
  created: Promise<ApprovalLinks>,
): Promise<ApprovalResult> {
  const { signal, timeout, onClosed } = options;

  return new Promise<ApprovalResult>((resolve, reject) => {
    // Every popup that this call opened, for the message check; `popup` is the
    // one that the closed check watches.
    const popups: Window[] = firstPopup ? [firstPopup] : [];
    let popup = firstPopup;
    let links: ApprovalLinks | undefined;
    let events: EventSource | undefined;
    let settled = false;
    let closedReported = false;
    let pageHidden = false;

    const end = (outcome: ApprovalResult | CountersignError, closePopups: boolean): void => {
      if (settled) return;
      settled = true;
      window.removeEventListener("message", onMessage);
      window.removeEventListener("pagehide", onPageHide);
      signal?.removeEventListener("abort", onAbort);
      events?.close();
      clearInterval(closedCheck);
      clearTimeout(timer);
      if (closePopups) {
        for (const opened of popups) opened.close();
      }
      if (outcome instanceof CountersignError) {
        reject(outcome);
      } else {
        resolve(outcome);
      }
    };

    const fail = (error: unknown): void => {
      end(
        error instanceof CountersignError
          ? error
          : new CountersignError("failed", "Following the approval request failed.", links?.id, error),
        true,
      );
    };

    // Pending and unknown statuses are ignored, so only a final status settles.
    const finish = (status: unknown): void => {
      if (!links) return;
      if (status === "approved") {
        end({ id: links.id, status }, false);
      } else if (status === "rejected" || status === "expired") {
        end(new CountersignError(status, `The approval request was ${status}.`, links.id), false);
      }
    };

    // Any page can post to this window, so a message counts only when it comes
    // from the Countersign origin and from a popup that this call opened.
    function onMessage(event: MessageEvent): void {
      const data: unknown = event.data;
      if (
        event.origin === origin &&
        popups.includes(event.source as Window) &&
        isRecord(data) &&
        data["type"] === RESULT_MESSAGE_TYPE &&
        data["id"] === links?.id
      ) {
        finish(data["status"]);
      }
    }

    function onPageHide(): void {
      pageHidden = true;
    }

    function onAbort(): void {
      end(new CountersignError("aborted", "The approval was cancelled.", links?.id, signal?.reason), true);
    }

    const onStatus = (event: MessageEvent): void => {
      try {
        const data: unknown = JSON.parse(String(event.data));
        if (isRecord(data) && data["id"] === links?.id) {
          finish(data["status"]);
        }
      } catch {
        // A malformed event is ignored, because a later event or the popup message still settles the request.
      }
    };

    // EventSource reconnects by itself after a network error. It gives up
    // (readyState CLOSED) on a fatal response such as 404 or a CORS refusal,
    // and Chromium also closes it when the page navigates away, before
    // `pagehide`. That case must not reject, because a page that stores the
    // request would then forget it on reload. So the check waits one task, by
    // which time a page that is going away has fired `pagehide` or stopped
    // running timers.
    const onStreamError = (): void => {
      setTimeout(() => {
        if (events?.readyState === EVENT_SOURCE_CLOSED && !pageHidden) {
          fail(
            new CountersignError(
              "failed",
              "The status stream of the approval request failed. Check that the page's origin is registered at Countersign.",
              links?.id,
            ),
          );
        }
      });
    };

    const handle = (id: string): PendingApproval => ({
      id,
      reopen(): boolean {
        if (settled || !links) return false;
        if (popup && !popup.closed) {
          popup.focus();
          return true;
        }
        const opened = openPopup(links.approval_url, options.popupFeatures);
        if (!opened) return false;
        popups.push(opened);
        popup = opened;
        closedReported = false;
        return true;
      },
    });

    // With Cross-Origin-Opener-Policy in the popup's history, `closed` reads
    // true while the popup is still open, so this only reports and never settles.
    const checkClosed = (): void => {
      if (settled || !links || closedReported || (popup && !popup.closed)) return;
      closedReported = true;
      popup = undefined;
      onClosed?.(handle(links.id));
    };

    const start = (response: ApprovalLinks): void => {
      if (settled) return;
      if (!isRecord(response) || typeof response.id !== "string" || response.id === "") {
        throw new CountersignError("failed", "The create response has no approval id.");
      }
      if (!isOnOrigin(response.approval_url, origin) || !isOnOrigin(response.events_url, origin)) {
        throw new CountersignError("failed", `The approval_url and events_url of the create response must be on ${origin}.`);
      }

      links = {
        id: response.id,
        approval_url: withLocale(response.approval_url, options.locale),
        events_url: response.events_url,
      };
      window.addEventListener("message", onMessage);
      events = new EventSource(links.events_url);
      events.addEventListener("status", onStatus);
      events.addEventListener("error", onStreamError);
      if (popup && !popup.closed) {
        popup.location.replace(links.approval_url);
      }
      setTimeout(checkClosed);
    };

    const closedCheck = setInterval(checkClosed, CLOSED_CHECK_MS);
    const timer =
      timeout === undefined
        ? undefined
        : setTimeout(() => end(new CountersignError("timeout", `No decision arrived within ${timeout} ms.`, links?.id), true), timeout);
    signal?.addEventListener("abort", onAbort);
    window.addEventListener("pagehide", onPageHide);

    created.then(start).catch(fail);
  });
}

/** Adds the host's `locale` to the popup's start URL, which Countersign reads. */
function withLocale(url: string, locale: string | undefined): string {
  if (!locale) return url;
  const localized = new URL(url);
  localized.searchParams.set("locale", locale);
  return localized.href;
}

function isOnOrigin(url: unknown, origin: string): boolean {
  try {
    return typeof url === "string" && new URL(url).origin === origin;
  } catch {
    return false;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function centredPopupFeatures(): string {
  const width = 480;
  const height = 640;
  const left = Math.max(0, Math.round((window.screenX || 0) + ((window.outerWidth || width) - width) / 2));
  const top = Math.max(0, Math.round((window.screenY || 0) + ((window.outerHeight || height) - height) / 2));
  return `popup,width=${width},height=${height},left=${left},top=${top}`;
}
