"use client";
// Sign-in and sign-out through NextAuth.js, with the Keycloak provider.
import { signIn, signOut } from "next-auth/react";
import { useState } from "react";

export function SignInButton() {
  return (
    <button id="sign-in" type="button" onClick={() => void signIn("keycloak", { callbackUrl: "/" })}>
      Sign in with Keycloak
    </button>
  );
}

/**
 * Ends the NextAuth session, then Keycloak's session through RP-initiated
 * logout, so that the next cashier has to enter a password.
 */
export function SignOutButton() {
  const [error, setError] = useState("");

  const onSignOut = async (): Promise<void> => {
    const response = await fetch("/api/sign-out", { method: "POST" });
    const body = (await response.json().catch(() => null)) as { url?: unknown; message?: unknown } | null;
    if (!response.ok || typeof body?.url !== "string") {
      setError(typeof body?.message === "string" ? body.message : `Signing out failed: HTTP ${response.status}.`);
      return;
    }
    await signOut({ redirect: false });
    window.location.assign(body.url);
  };

  return (
    <>
      <button id="sign-out" type="button" onClick={() => void onSignOut()}>
        Sign out
      </button>
      {error ? <span role="alert">{error}</span> : null}
    </>
  );
}
