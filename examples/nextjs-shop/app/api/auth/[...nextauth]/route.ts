// NextAuth's endpoints: sign-in, the Keycloak callback
// (/api/auth/callback/keycloak), session and sign-out.
import NextAuth from "next-auth";

import { authOptions } from "@/lib/auth";

type RouteContext = { params: Promise<{ nextauth: string[] }> };

// The options are built per request, so that `next build` needs no Keycloak variables.
function handler(request: Request, context: RouteContext): Promise<Response> {
  return NextAuth(request as never, context as never, authOptions());
}

export { handler as GET, handler as POST };
