import type http from 'node:http';
import type { Registry } from 'prom-client';
import { within } from './deadline.js';

/** Runs a readiness check that cannot hang: a backing service that does not answer in time counts as down. */
export function checkReady(ready: () => Promise<boolean>, timeoutMs = 2000): Promise<boolean> {
  const answer = ready().catch(() => false);
  return within(answer, timeoutMs, false);
}

/**
 * Serves /metrics, /healthz and /readyz for processes without Express (workers, realtime).
 * `fallback` gets every other request.
 */
export function createOpsHandler(metrics: Registry, ready: () => Promise<boolean>, fallback?: http.RequestListener) {
  return async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      const body = await metrics.metrics();
      res.writeHead(200, { 'Content-Type': metrics.contentType });
      res.end(body);
    } else if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"status":"ok"}');
    } else if (req.method === 'GET' && path === '/readyz') {
      const ok = await checkReady(ready);
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ status: ok ? 'ready' : 'unavailable' }));
    } else if (fallback) {
      fallback(req, res);
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":{"code":"NOT_FOUND","message":"No such endpoint"}}');
    }
  };
}
