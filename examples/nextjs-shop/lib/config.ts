// Server-side configuration from environment variables. Every value is read
// at request time, so `next build` needs none of them.

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: see examples/nextjs-shop/README.md for the environment variables`);
  }
  return value;
}

/** Base URL and API key of Countersign. The key never leaves the server. */
export function countersignConfig(): { url: string; apiKey: string } {
  return { url: required("COUNTERSIGN_URL").replace(/\/+$/, ""), apiKey: required("COUNTERSIGN_API_KEY") };
}

/** Origin of Countersign for the browser SDK, for example `http://127.0.0.1:18300`. */
export function countersignOrigin(): string {
  return new URL(required("COUNTERSIGN_URL")).origin;
}

/** Public URL of this app without a trailing slash, from `NEXTAUTH_URL`. */
export function shopUrl(): string {
  return required("NEXTAUTH_URL").replace(/\/+$/, "");
}

/** Origin of this app's pages, which Countersign must list in `approvals.allowed_origins`. */
export function shopOrigin(): string {
  return new URL(shopUrl()).origin;
}

export function keycloakConfig(): { issuer: string; clientId: string; clientSecret: string } {
  return {
    issuer: required("KEYCLOAK_ISSUER").replace(/\/+$/, ""),
    clientId: required("KEYCLOAK_CLIENT_ID"),
    clientSecret: required("KEYCLOAK_CLIENT_SECRET"),
  };
}
