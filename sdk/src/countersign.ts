/**
 * Countersign browser SDK: opens the approval popup from a click handler and
 * follows the approval request until the approver decides.
 *
 * The outcome that this SDK reports is a notification only. The host backend
 * must consume the approval (`POST /api/v1/approvals/{id}/consume`) and act
 * only on the decision that the consume call returns.
 */

/** Reason why `requestApproval` rejected. */
export type CountersignErrorCode = "popup_blocked" | "rejected" | "expired" | "failed";

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

/** Response of `POST /api/v1/approvals`, passed through by the host backend. */
export interface CreatedApproval {
  id: string;
  approval_url: string;
  events_url: string;
  status?: string;
  expires_at?: string;
}

export interface RequestApprovalOptions {
  /** Origin of the Countersign service, for example `http://127.0.0.1:18300`. */
  countersignOrigin: string;
  /** Callback that makes the host backend create the approval request. Called after the popup is open. */
  create: () => CreatedApproval | PromiseLike<CreatedApproval>;
  /** Features for `window.open`. The default is a 480 × 640 popup centred on the window. */
  popupFeatures?: string;
  /** Signal whose abort closes the popup and rejects with `signal.reason`. */
  signal?: AbortSignal;
}

export interface ApprovalResult {
  id: string;
  status: "approved";
}

const RESULT_MESSAGE_TYPE = "countersign:result";
const EVENT_SOURCE_CLOSED = 2;

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
  const { signal } = options;
  if (signal?.aborted) {
    return Promise.reject(signal.reason);
  }

  let origin: string;
  try {
    origin = new URL(options.countersignOrigin).origin;
  } catch (error) {
    return Promise.reject(
      new CountersignError("failed", `countersignOrigin is not a valid URL: ${options.countersignOrigin}`, undefined, error),
    );
  }

  let opened: Window | null = null;
  try {
    opened = window.open("about:blank", "countersign", options.popupFeatures ?? centredPopupFeatures());
  } catch {
    opened = null;
  }
  if (!opened) {
    return Promise.reject(
      new CountersignError("popup_blocked", "The browser blocked the approval popup. Allow popups for this site and try again."),
    );
  }
  const popup: Window = opened;

  return new Promise<ApprovalResult>((resolve, reject) => {
    let settled = false;
    let id: string | undefined;
    let events: EventSource | undefined;

    const cleanUp = (): void => {
      settled = true;
      window.removeEventListener("message", onMessage);
      signal?.removeEventListener("abort", onAbort);
      events?.close();
    };

    const fail = (message: string, cause?: unknown): void => {
      if (settled) return;
      cleanUp();
      popup.close();
      reject(new CountersignError("failed", message, id, cause));
    };

    // Pending and unknown statuses are ignored, so only a final status settles.
    const finish = (status: unknown): void => {
      if (settled || id === undefined) return;
      if (status === "approved") {
        cleanUp();
        resolve({ id, status });
      } else if (status === "rejected" || status === "expired") {
        cleanUp();
        reject(new CountersignError(status, `The approval request was ${status}.`, id));
      }
    };

    // Any page can post to this window, so a message counts only when it comes
    // from the Countersign origin and from the popup that this call opened.
    function onMessage(event: MessageEvent): void {
      const data: unknown = event.data;
      if (
        event.origin === origin &&
        event.source === popup &&
        isRecord(data) &&
        data["type"] === RESULT_MESSAGE_TYPE &&
        data["id"] === id
      ) {
        finish(data["status"]);
      }
    }

    function onAbort(): void {
      if (settled) return;
      cleanUp();
      popup.close();
      reject(signal?.reason);
    }

    const onStatus = (event: MessageEvent): void => {
      try {
        const data: unknown = JSON.parse(String(event.data));
        if (isRecord(data) && data["id"] === id) {
          finish(data["status"]);
        }
      } catch {
        // A malformed event is ignored, because a later event or the popup message still settles the request.
      }
    };

    // EventSource reconnects by itself after a network error. It gives up
    // (readyState CLOSED) only on a fatal response such as 404 or a CORS refusal.
    const onStreamError = (): void => {
      if (events?.readyState === EVENT_SOURCE_CLOSED) {
        fail("The status stream of the approval request failed. Check that the shop's origin is registered at Countersign.");
      }
    };

    const isOnCountersign = (url: unknown): boolean => {
      try {
        return typeof url === "string" && new URL(url).origin === origin;
      } catch {
        return false;
      }
    };

    const follow = (created: CreatedApproval): void => {
      if (settled) return;
      if (!isRecord(created) || typeof created.id !== "string" || created.id === "") {
        fail("The create response has no approval id.");
        return;
      }
      if (!isOnCountersign(created.approval_url) || !isOnCountersign(created.events_url)) {
        fail(`The approval_url and events_url of the create response must be on ${origin}.`);
        return;
      }
      if (popup.closed) {
        fail("The approval popup was closed before the request was created.");
        return;
      }

      id = created.id;
      window.addEventListener("message", onMessage);
      events = new EventSource(created.events_url);
      events.addEventListener("status", onStatus);
      events.addEventListener("error", onStreamError);
      try {
        popup.location.replace(created.approval_url);
      } catch (error) {
        fail("Opening the approval page in the popup failed.", error);
      }
    };

    signal?.addEventListener("abort", onAbort);

    Promise.resolve()
      .then(() => options.create())
      .then(follow, (error: unknown) => fail("Creating the approval request failed.", error))
      .catch((error: unknown) => fail("Following the approval request failed.", error));
  });
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
