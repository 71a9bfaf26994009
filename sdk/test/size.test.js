import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_GZIPPED_BYTES, measureSize } from "./size.js";

test("minified SDK stays within 3 KB gzipped", () => {
  const size = measureSize();

  assert.ok(size.minified < size.built, `esbuild did not shrink the file: ${size.minified} B from ${size.built} B`);
  assert.ok(size.gzipped <= MAX_GZIPPED_BYTES, `${size.gzipped} B minified+gzipped, limit ${MAX_GZIPPED_BYTES} B`);
});
