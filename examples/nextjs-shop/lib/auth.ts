// NextAuth.js (v4) set-up: the cashier signs in at Keycloak through the
// confidential client `nextjs-shop`.
import { getServerSession, type NextAuthOptions } from "next-auth";
import KeycloakProvider from "next-auth/providers/keycloak";

import { keycloakConfig } from "./config";

/** The signed-in cashier as the route handlers and pages see them. */
export interface Cashier {
  sub: string;
  name: string;
  username: string | null;
}

interface KeycloakProfile {
  sub?: string;
  name?: string;
  preferred_username?: string;
}

/**
 * Builds the NextAuth options from the environment. A function, not a
 * constant, so that `next build` runs without the Keycloak variables.
 */
export function authOptions(): NextAuthOptions {
  const { issuer, clientId, clientSecret } = keycloakConfig();
  return {
    providers: [KeycloakProvider({ issuer, clientId, clientSecret })],
    session: { strategy: "jwt" },
    callbacks: {
      // The JWT lives in an encrypted cookie. It keeps the ID token for the
      // Keycloak sign-out, which the session below never exposes to the browser.
      jwt({ token, account, profile }) {
        if (account && profile) {
          const keycloakProfile = profile as KeycloakProfile;
          token.sub = keycloakProfile.sub ?? token.sub;
          token.name = keycloakProfile.name ?? keycloakProfile.preferred_username ?? token.name;
          token.username = keycloakProfile.preferred_username ?? null;
          token.idToken = account.id_token ?? null;
        }
        return token;
      },
      session({ session, token }) {
        session.cashier = {
          sub: token.sub ?? "",
          name: token.name ?? "",
          username: token.username ?? null,
        };
        return session;
      },
    },
  };
}

/** Returns the signed-in cashier, or null without a session. */
export async function currentCashier(): Promise<Cashier | null> {
  const session = await getServerSession(authOptions());
  const cashier = session?.cashier;
  if (!cashier || cashier.sub === "") return null;
  return cashier;
}
