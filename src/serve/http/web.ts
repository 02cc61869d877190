// The web chat page at `/` (src/serve/web/: index.html, chat.css, chat.js) and the browser builds of its
// two libraries, marked (Markdown) and DOMPurify (its sanitiser), served from node_modules at fixed routes:
// bundled, no CDN, works offline. Files are read once, when the server is created; tsc copies no non-TS
// files to dist/, so the page is read from the package's src/serve/web (packageRoot: from src/ or dist/,
// in a clone or the installed package). A strict Content-Security-Policy (scripts only from this origin,
// no inline script, fetches only to this origin) backs the sanitiser. The page and its assets need no API
// key; the API calls the page makes send the key the user types as a Bearer token.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { FastifyInstance } from "fastify";
import { packageRoot } from "../../core/paths.js";

export const WEB_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

interface Asset {
  type: string;
  body: string;
}

/** Route → where the file is. The vendored builds are ES modules, their source-map comments dropped. */
function assetFiles(): Record<string, { path: string; type: string }> {
  const require = createRequire(import.meta.url);
  const web = join(packageRoot(), "src", "serve", "web");
  const js = "text/javascript; charset=utf-8";
  return {
    "/": { path: join(web, "index.html"), type: "text/html; charset=utf-8" },
    "/web/chat.css": { path: join(web, "chat.css"), type: "text/css; charset=utf-8" },
    "/web/chat.js": { path: join(web, "chat.js"), type: js },
    // marked's package exports its ES build as "."; DOMPurify's ES build sits beside its main file.
    "/web/vendor/marked.js": { path: require.resolve("marked"), type: js },
    "/web/vendor/purify.js": { path: join(dirname(require.resolve("dompurify")), "purify.es.mjs"), type: js },
  };
}

let cache: Map<string, Asset> | null = null;

function assets(): Map<string, Asset> {
  if (cache) return cache;
  const out = new Map<string, Asset>();
  for (const [route, { path, type }] of Object.entries(assetFiles())) {
    let body: string;
    try {
      body = readFileSync(path, "utf8");
    } catch (e) {
      throw new Error(`herd serve: the web page's file ${path} cannot be read (${(e as Error).message})`);
    }
    out.set(route, { type, body: body.replace(/^\/\/# sourceMappingURL=.*$/m, "") });
  }
  cache = out;
  return out;
}

/** Is this route the page or one of its assets (served without the API key)? */
export const isWebRoute = (route: string | undefined): boolean => route !== undefined && assets().has(route);

export function webRoutes(app: FastifyInstance): void {
  for (const [route, a] of assets())
    app.get(route, async (_req, reply) =>
      reply
        .type(a.type)
        .header("content-security-policy", WEB_CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("cache-control", "no-cache")
        .send(a.body),
    );
}
