// Measures the core SDK as a page would load it in production: dist/countersign.js
// minified by esbuild, then compressed with gzip level 9. `npm run size` prints
// the numbers and exits with status 1 above the limit; size.test.js checks the limit.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { transformSync } from "esbuild";

export const SDK_FILE = fileURLToPath(new URL("../dist/countersign.js", import.meta.url));
/** Upper limit of the minified and gzipped core SDK, in bytes. */
export const MAX_GZIPPED_BYTES = 3 * 1024;

/** Returns the byte sizes of dist/countersign.js: `built` (tsc output), `minified` and `gzipped` (minified, then gzip -9). */
export function measureSize() {
  const built = readFileSync(SDK_FILE, "utf8");
  const { code } = transformSync(built, { minify: true, format: "esm", target: "es2022" });
  return {
    built: Buffer.byteLength(built),
    minified: Buffer.byteLength(code),
    gzipped: gzipSync(code, { level: 9 }).length,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const size = measureSize();
  console.log(`dist/countersign.js: ${size.built} B built, ${size.minified} B minified, ${size.gzipped} B minified+gzipped (limit ${MAX_GZIPPED_BYTES} B)`);
  if (size.gzipped > MAX_GZIPPED_BYTES) {
    console.error(`the minified and gzipped SDK is ${size.gzipped} B, over the limit of ${MAX_GZIPPED_BYTES} B`);
    process.exitCode = 1;
  }
}
