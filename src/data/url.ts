// URL normalisation for URL-level dedup (the paper keeps the most recent crawl of each URL) and for domain
// rules: lower-cased host, default ports, fragments and tracking parameters removed, query parameters
// sorted, dot segments resolved, and (by default) "www." and http/https treated as the same site.

const TRACKING = /^(utm_[a-z]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|yclid|_ga|igshid|ref_src)$/i;

export interface UrlNormOptions {
  /** Treat http:// and https:// as the same URL (default true). */
  ignoreScheme?: boolean;
  /** Treat www.example.com and example.com as the same host (default true). */
  ignoreWww?: boolean;
}

/** The normal form of a URL, or null if it does not parse as an absolute URL. */
export function normalizeUrl(raw: string, opts: UrlNormOptions = {}): string | null {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    return null;
  }
  const scheme = opts.ignoreScheme === false ? u.protocol : u.protocol === "https:" ? "http:" : u.protocol;
  let host = u.hostname.toLowerCase().replace(/\.$/, "");
  if (opts.ignoreWww !== false) host = host.replace(/^www\d*\./, "");
  const port =
    u.port && !((u.protocol === "http:" && u.port === "80") || (u.protocol === "https:" && u.port === "443"))
      ? `:${u.port}`
      : "";
  const params = [...u.searchParams.entries()].filter(([k]) => !TRACKING.test(k));
  params.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const query = params.length > 0 ? `?${new URLSearchParams(params).toString()}` : "";
  let path = u.pathname;
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  return `${scheme}//${host}${port}${path}${query}`;
}

/** The host of a URL, lower-cased, without "www." (null if unparsable). */
export function urlHost(raw: string): string | null {
  try {
    return new URL(raw.trim()).hostname
      .toLowerCase()
      .replace(/\.$/, "")
      .replace(/^www\d*\./, "");
  } catch {
    return null;
  }
}

/** Whether `host` is `domain` or one of its subdomains. */
export function hostMatches(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}
