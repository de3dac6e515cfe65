import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ADMIN_BOARD_PATH } from '../../src/api/admin-board.js';
import { VOTE_METHOD, VOTE_PATH } from '../../src/api/routes/votes.js';
import { startStack, type Stack } from '../helpers/stack.js';

/**
 * openapi.yaml documents every route the running API serves, and no other: the list comes from
 * the router stack of the API's own Express app (and the bare vote route), not from reading the
 * source, so a route registered anywhere, however it is written, must be documented.
 */

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const doc = parse(readFileSync('openapi.yaml', 'utf8')) as { paths: Record<string, Record<string, unknown>> };
const documented = new Set(Object.entries(doc.paths).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`)));

interface Layer {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

const toTemplate = (path: string) => path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
const joinPath = (prefix: string, path: string) => (path === '/' && prefix ? prefix : prefix.replace(/\/$/, '') + path);

/** `METHOD /path/{param}` of every route in an Express router stack, mounted routers followed. */
function routesOf(stack: Layer[], prefix = ''): string[] {
  const out: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const paths = ([] as unknown[]).concat(layer.route.path);
      for (const path of paths) {
        expect(typeof path, `a route path under ${prefix || '/'} that is not a plain string`).toBe('string');
        expect(path as string, 'wildcards and optional segments cannot be compared with the document').not.toMatch(/[*{}()?]/);
        for (const method of Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m])) {
          out.push(`${method.toUpperCase()} ${toTemplate(joinPath(prefix, path as string))}`);
        }
      }
    } else if (layer.handle.stack) {
      expect(typeof layer.rawPath, `a router mounted under ${prefix || '/'} on a path that is not a plain string`).toBe('string');
      const mount = joinPath(prefix, layer.rawPath as string);
      // Bull Board's own routes (assets, its API) live under one documented page.
      if (mount === ADMIN_BOARD_PATH) out.push(`GET ${ADMIN_BOARD_PATH}`);
      else out.push(...routesOf(layer.handle.stack, mount === '/' ? '' : mount));
    }
  }
  return out;
}

let stack: Stack;
beforeAll(async () => {
  // Every optional router mounted: the development sign-in and Bull Board.
  stack = await startStack({ workers: false, env: { DEV_SIGN_IN: 'true', ADMIN_USER: 'ops', ADMIN_PASSWORD: 'ops-password' } });
});
afterAll(async () => {
  await stack?.close();
});

describe('openapi.yaml and the running API', () => {
  it('documents every route the API serves and invents none', () => {
    const router = (stack.api.app as unknown as { router: { stack: Layer[] } }).router;
    const served = new Set(routesOf(router.stack));

    // The bare vote route, ahead of Express: the one documented path its pattern matches.
    const votePaths = Object.keys(doc.paths).filter((p) => VOTE_PATH.test(p.replace(/\{[^}]+\}/g, '123')));
    expect(votePaths, 'exactly one documented path is the vote route').toHaveLength(1);
    expect(VOTE_PATH.exec(votePaths[0].replace(/\{[^}]+\}/g, '123'))![1], 'its id is the path parameter').toBe('123');
    served.add(`${VOTE_METHOD} ${votePaths[0]}`);

    expect([...served].filter((r) => !documented.has(r)).sort(), 'routes missing from openapi.yaml').toEqual([]);
    expect([...documented].filter((r) => !served.has(r)).sort(), 'documented routes the API does not serve').toEqual([]);
    // Sanity: the list really came from the app, routers and optional mounts included.
    for (const route of [
      'GET /healthz',
      'POST /api/v1/polls',
      'GET /api/v1/polls/{id}/votes.csv',
      'POST /api/v1/admin/votes/{vote_id}/review',
      'POST /api/v1/dev/token',
      'GET /admin/queues',
      'GET /polls/{id}',
    ]) {
      expect(served).toContain(route);
    }
  });

  it('notices a route registered without documentation', () => {
    const router = (stack.api.app as unknown as { router: { stack: Layer[] } }).router;
    const before = router.stack.length;
    stack.api.app.get('/api/v1/undocumented', (_req, res) => {
      res.json({});
    });
    try {
      const served = routesOf(router.stack);
      expect(served).toContain('GET /api/v1/undocumented');
      expect(documented.has('GET /api/v1/undocumented')).toBe(false);
    } finally {
      router.stack.splice(before);
    }
  });
});
