// Progress-line durations: rounded once to whole seconds, so a minute never shows 60 seconds.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDuration } from "../../src/cli/duration.js";

test("formatDuration: seconds, minutes, hours; no '5m60s'", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(59.4), "59s");
  assert.equal(formatDuration(59.6), "1m00s");
  assert.equal(formatDuration(359.6), "6m00s");
  assert.equal(formatDuration(367), "6m07s");
  assert.equal(formatDuration(3599.7), "1h00m");
  assert.equal(formatDuration(7385), "2h03m");
  assert.equal(formatDuration(Number.NaN), "?");
  assert.equal(formatDuration(Number.POSITIVE_INFINITY), "?");
});
