// Small OpenID Connect client helpers for the tests: authorization URLs with
// PKCE, the code exchange, the refresh-token grant and JWT payload decoding.
// The tests use them to act as a relying party, never to check signatures.
import { createHash, randomBytes } from "node:crypto";

/** Returns a random URL-safe string of `bytes` random bytes. */
export function randomToken(bytes = 16) {
  return randomBytes(bytes).toString("base64url");
}

/** Creates a PKCE S256 pair: `{ verifier, challenge }`. */
export function createPkce() {
  const verifier = randomToken(32);
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge };
}

/**
 * Builds an authorization request URL of the authorization code flow.
 * `issuer` is the realm URL, for example http://localhost:18080/realms/countersign-demo.
 * `extra` adds parameters such as `prompt`, `max_age` or `login_hint`.
 */
export function authorizationUrl({ issuer, clientId, redirectUri, state, nonce, codeChallenge, scope = "openid", extra = {} }) {
  const url = new URL(`${issuer}/protocol/openid-connect/auth`);
  url.searchParams.set("client_id", clientId);
  url.searchParams.set("redirect_uri", redirectUri);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", scope);
  url.searchParams.set("state", state);
  url.searchParams.set("nonce", nonce);
  if (codeChallenge) {
    url.searchParams.set("code_challenge", codeChallenge);
    url.searchParams.set("code_challenge_method", "S256");
  }
  for (const [name, value] of Object.entries(extra)) {
    url.searchParams.set(name, String(value));
  }
  return url.toString();
}

/** Builds the RP-initiated logout URL of `issuer`. */
export function endSessionUrl({ issuer, idTokenHint, postLogoutRedirectUri, state, clientId }) {
  const url = new URL(`${issuer}/protocol/openid-connect/logout`);
  if (idTokenHint) url.searchParams.set("id_token_hint", idTokenHint);
  if (clientId) url.searchParams.set("client_id", clientId);
  if (postLogoutRedirectUri) url.searchParams.set("post_logout_redirect_uri", postLogoutRedirectUri);
  if (state) url.searchParams.set("state", state);
  return url.toString();
}

/**
 * Posts a form to the token endpoint of `issuer` with client_secret_post.
 * Returns `{ status, body }` for every HTTP status, so a test can assert on
 * `invalid_grant` and similar OAuth errors.
 */
export async function tokenRequest({ issuer, clientId, clientSecret, params }) {
  const form = new URLSearchParams({ client_id: clientId, client_secret: clientSecret, ...params });
  const response = await fetch(`${issuer}/protocol/openid-connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: form,
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: response.status, body };
}

/** Exchanges an authorization code; see tokenRequest for the result. */
export function exchangeCode({ issuer, clientId, clientSecret, code, redirectUri, codeVerifier }) {
  const params = { grant_type: "authorization_code", code, redirect_uri: redirectUri };
  if (codeVerifier) params.code_verifier = codeVerifier;
  return tokenRequest({ issuer, clientId, clientSecret, params });
}

/** Runs a refresh-token grant; see tokenRequest for the result. */
export function refreshTokens({ issuer, clientId, clientSecret, refreshToken }) {
  return tokenRequest({ issuer, clientId, clientSecret, params: { grant_type: "refresh_token", refresh_token: refreshToken } });
}

/** Decodes the payload of a JWT without checking its signature. */
export function decodeJwt(jwt) {
  const parts = String(jwt).split(".");
  if (parts.length !== 3) {
    throw new Error(`invalid JWT: expected 3 dot-separated parts, got ${parts.length}`);
  }
  return JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
}
