// How long something takes or has left, for progress lines: "42s", "5m07s", "2h03m" (whole seconds,
// rounded once, so 359.6 s reads "6m00s", never "5m60s"); "?" when unknown.
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
