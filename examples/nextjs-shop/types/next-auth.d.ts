// Fields that lib/auth.ts adds to NextAuth's JWT and session.
import type { Cashier } from "../lib/auth";

declare module "next-auth" {
  interface Session {
    cashier?: Cashier;
  }
}

declare module "next-auth/jwt" {
  interface JWT {
    username?: string | null;
    idToken?: string | null;
  }
}
