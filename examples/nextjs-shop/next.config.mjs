/** @type {import("next").NextConfig} */
const nextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // The example has no ESLint set-up, and `next build` would otherwise warn about it.
  eslint: { ignoreDuringBuilds: true },
};

export default nextConfig;
