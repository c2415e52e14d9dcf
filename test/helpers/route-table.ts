// The routes a Fastify app serves, read from the app itself (printRoutes), so a suite that walks "every route"
// covers a route added tomorrow without being told.
import type { FastifyInstance, HTTPMethods } from 'fastify';

export interface RouteEntry {
  /** As registered, e.g. `/v1/models/:id`; `/*` for the catch-all. */
  url: string;
  methods: string[];
}

const LINE = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([A-Z, ]+)\))?$/;

/**
 * Parses `printRoutes({ commonPrefix: false })`: one node per line, indented four columns per level, a child's
 * segment continuing its parent's path. Every parsed route is checked with hasRoute, so a change of the printed
 * format fails loudly instead of silently dropping routes.
 */
export function routeTable(app: FastifyInstance): RouteEntry[] {
  const out: RouteEntry[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    if (line.trim() === '') continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`route-table: cannot read the printRoutes line ${JSON.stringify(line)}`);
    const depth = m[1]!.length / 4;
    stack.length = depth;
    let url = (stack[depth - 1] ?? '') + m[2]!;
    // The catch-all registered as `*` is stored (and printed, at the root) without its leading slash.
    if (!url.startsWith('/')) url = `/${url}`;
    stack.push(url);
    if (m[3] === undefined) continue;
    const methods = m[3].split(',').map((s) => s.trim());
    for (const method of methods) {
      if (!app.hasRoute({ url, method: method as HTTPMethods })) {
        throw new Error(`route-table: parsed ${method} ${url}, which the app does not have`);
      }
    }
    out.push({ url, methods });
  }
  if (out.length === 0) throw new Error('route-table: no routes parsed');
  return out;
}
