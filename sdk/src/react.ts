"use client";
/**
 * React binding of the Countersign browser SDK (`@countersign/sdk/react`).
 *
 * `useCountersign` wraps `requestApproval` and keeps its progress in React
 * state. React is an optional peer dependency, so the core entry
 * `@countersign/sdk` stays free of runtime dependencies.
 */

import { useCallback, useEffect, useRef, useState } from "react";

import { CountersignError, requestApproval } from "./countersign.js";
import type { ApprovalResult, CountersignErrorCode, CreatedApproval, PendingApproval } from "./countersign.js";

export { CountersignError } from "./countersign.js";
export type { ApprovalResult, CountersignErrorCode, CreatedApproval } from "./countersign.js";

/**
 * Progress of the latest request: `idle` before the first one, `pending`
 * while it waits for the approver, `approved`, or the `CountersignError`
 * code it rejected with (`aborted` after `cancel()`, a newer `request()` or
 * an unmount).
 */
export type CountersignStatus = "idle" | "pending" | "approved" | CountersignErrorCode;

export interface UseCountersignOptions {
  /** Origin of the Countersign service, for example `http://127.0.0.1:18300`. */
  countersignOrigin: string;
  /** Features for `window.open`. The default is a 480 × 640 popup centred on the window. */
  popupFeatures?: string;
  /** Milliseconds after `request()` at which the SDK closes the popup and rejects with code `timeout`. */
  timeout?: number;
}

/** Callback that makes the host backend create the approval request and returns Countersign's create response. */
export type CreateApproval = () => CreatedApproval | PromiseLike<CreatedApproval>;

export interface UseCountersignResult {
  /**
   * Opens the approval popup and returns the promise of `requestApproval`.
   * Call it synchronously inside a click handler, because browsers block
   * `window.open` after an `await` or a timer. A pending request of this hook
   * is aborted first, which closes its popup.
   */
  request: (create: CreateApproval) => Promise<ApprovalResult>;
  /** Aborts the pending request: closes its popup and sets `status` to `aborted`. Does nothing when none is pending. */
  cancel: () => void;
  /**
   * Opens the approval page again after `popupClosed` became true. Call it
   * synchronously inside a click handler. Returns false when the browser
   * blocked the popup or no request is pending.
   */
  reopen: () => boolean;
  status: CountersignStatus;
  /** True while a request waits for the approver, the same as `status === "pending"`. */
  pending: boolean;
  /**
   * True while the request is pending but no popup of it is reachable: the
   * user closed it, or a page with Cross-Origin-Opener-Policy cut it off.
   * The request can still be decided, so offer `reopen()`.
   */
  popupClosed: boolean;
  /** Approval id and status of the latest approved request, or null. */
  result: ApprovalResult | null;
  /** The `CountersignError` that the latest request rejected with, or null. */
  error: CountersignError | null;
}

interface HookState {
  status: CountersignStatus;
  result: ApprovalResult | null;
  error: CountersignError | null;
  closedApproval: PendingApproval | null;
}

const IDLE: HookState = { status: "idle", result: null, error: null, closedApproval: null };
const PENDING: HookState = { status: "pending", result: null, error: null, closedApproval: null };

function asCountersignError(error: unknown): CountersignError {
  return error instanceof CountersignError ? error : new CountersignError("failed", String(error), undefined, error);
}

/**
 * Requests approvals from a React component and tracks the latest one.
 *
 * The popup belongs to the component: unmounting aborts a pending request
 * and closes its popup. The result is a notification for the page only, so
 * the host backend must still consume the approval before it acts.
 */
export function useCountersign(options: UseCountersignOptions): UseCountersignResult {
  const { countersignOrigin, popupFeatures, timeout } = options;
  const [state, setState] = useState<HookState>(IDLE);
  // The controller of the pending request. Callbacks of an older request
  // compare against it, so they never overwrite the state of a newer one.
  const controllerRef = useRef<AbortController | null>(null);
  const mountedRef = useRef(false);

  useEffect(() => {
    mountedRef.current = true;
    return () => {
      mountedRef.current = false;
      const controller = controllerRef.current;
      controllerRef.current = null;
      controller?.abort(new DOMException("The component that requested the approval was unmounted.", "AbortError"));
    };
  }, []);

  const request = useCallback(
    (create: CreateApproval): Promise<ApprovalResult> => {
      const previous = controllerRef.current;
      const controller = new AbortController();
      controllerRef.current = controller;
      previous?.abort(new DOMException("A newer approval request replaced this one.", "AbortError"));

      const isCurrent = (): boolean => controllerRef.current === controller && mountedRef.current;
      // Nothing may be awaited before this call, so that window.open runs
      // inside the click's user activation.
      const promise = requestApproval({
        countersignOrigin,
        create,
        signal: controller.signal,
        onClosed: (approval) => {
          if (isCurrent()) setState((current) => ({ ...current, closedApproval: approval }));
        },
        ...(popupFeatures === undefined ? {} : { popupFeatures }),
        ...(timeout === undefined ? {} : { timeout }),
      });
      setState(PENDING);

      promise.then(
        (result) => {
          if (!isCurrent()) return;
          controllerRef.current = null;
          setState({ status: "approved", result, error: null, closedApproval: null });
        },
        (error: unknown) => {
          if (!isCurrent()) return;
          controllerRef.current = null;
          const countersignError = asCountersignError(error);
          setState({ status: countersignError.code, result: null, error: countersignError, closedApproval: null });
        },
      );
      return promise;
    },
    [countersignOrigin, popupFeatures, timeout],
  );

  // The rejection handler of `request` sets the `aborted` state.
  const cancel = useCallback((): void => {
    controllerRef.current?.abort(new DOMException("The approval request was cancelled.", "AbortError"));
  }, []);

  const { closedApproval } = state;
  const reopen = useCallback((): boolean => {
    if (!closedApproval || !closedApproval.reopen()) return false;
    setState((current) => (current.closedApproval === closedApproval ? { ...current, closedApproval: null } : current));
    return true;
  }, [closedApproval]);

  return {
    request,
    cancel,
    reopen,
    status: state.status,
    pending: state.status === "pending",
    popupClosed: closedApproval !== null,
    result: state.result,
    error: state.error,
  };
}
