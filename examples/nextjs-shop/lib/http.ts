// Helpers of the JSON route handlers.
import { NextResponse } from "next/server";

import { shopOrigin } from "./config";

/** Returns `{ "message": ... }` with `status`. */
export function jsonMessage(status: number, message: string): NextResponse {
  return NextResponse.json({ message }, { status });
}

/**
 * Returns a 403 response unless the request's Origin header is this app's
 * origin. The session cookie is SameSite=Lax, and this check also keeps out
 * same-site pages on other ports.
 */
export function rejectCrossOrigin(request: Request): NextResponse | null {
  const origin = request.headers.get("origin");
  if (origin === shopOrigin()) return null;
  return jsonMessage(403, `Requests must come from ${shopOrigin()}, not from ${origin ?? "a page without an Origin header"}.`);
}
