import type { Metadata } from "next";
import type { ReactNode } from "react";

import "./shop.css";

export const metadata: Metadata = {
  title: "Next.js shop (Countersign demo)",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <main>{children}</main>
      </body>
    </html>
  );
}
