// Returns Keycloak's RP-initiated logout URL for the signed-in cashier, so
// that the next sign-in requires a password again. The page clears the
// NextAuth session itself with next-auth's signOut().
import { NextResponse, type NextRequest } from "next/server";
import { getToken } from "next-auth/jwt";

import { keycloakConfig, shopUrl } from "@/lib/config";
import { jsonMessage, rejectCrossOrigin } from "@/lib/http";

export async function POST(request: NextRequest): Promise<NextResponse> {
  const rejected = rejectCrossOrigin(request);
  if (rejected) return rejected;
  const token = await getToken({ req: request, secret: process.env.NEXTAUTH_SECRET });
  const afterSignOut = `${shopUrl()}/`;
  if (!token?.idToken) return NextResponse.json({ url: afterSignOut });

  const { issuer, clientId } = keycloakConfig();
  let endSessionEndpoint: unknown;
  try {
    const discovery = await fetch(`${issuer}/.well-known/openid-configuration`, {
      cache: "no-store",
      signal: AbortSignal.timeout(10_000),
    });
    if (!discovery.ok) throw new Error(`HTTP ${discovery.status}`);
    endSessionEndpoint = ((await discovery.json()) as { end_session_endpoint?: unknown }).end_session_endpoint;
  } catch (error) {
    console.error(`reading Keycloak's discovery document at ${issuer} failed:`, error);
    return jsonMessage(502, "Keycloak's discovery document could not be read, so the Keycloak session stays.");
  }
  if (typeof endSessionEndpoint !== "string") {
    console.warn(`Keycloak at ${issuer} has no end_session_endpoint, so its session stays`);
    return NextResponse.json({ url: afterSignOut });
  }

  const url = new URL(endSessionEndpoint);
  url.searchParams.set("id_token_hint", token.idToken);
  url.searchParams.set("client_id", clientId);
  url.searchParams.set("post_logout_redirect_uri", afterSignOut);
  return NextResponse.json({ url: url.href });
}
