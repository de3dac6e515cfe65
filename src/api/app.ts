import express, { type NextFunction, type Request, type Response } from 'express';
import type { Histogram, Registry } from 'prom-client';
import { errorBody, notJson } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { checkReady } from '../shared/ops-server.js';
import type { Authenticate } from '../shared/auth.js';
import { httpOf } from './error-status.js';
import { toAppError } from './http.js';
import { requestLogger, routeTemplate } from './request-log.js';

export interface AppDeps {
  log: Logger;
  authenticate: Authenticate;
  trustProxy: boolean | number | string;
  metrics: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  ready: () => Promise<boolean>;
  routers: Array<[string, express.Router]>;
}

/** The Express app: every route but the vote hot path. */
export function createApp(deps: AppDeps) {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy);
  app.set('query parser', 'simple');

  app.use(requestLogger(deps.log));
  // Route templates, not raw paths: ids in labels would explode the metric's cardinality.
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      deps.httpDuration.observe({ method: req.method, route: routeTemplate(req), status: res.statusCode }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const ok = await checkReady(deps.ready);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'unavailable' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.contentType).send(await deps.metrics.metrics());
  });

  app.use('/api', express.json({ limit: '64kb' }));
  app.use('/api', (req: Request, _res: Response, next: NextFunction) => {
    // A body that is not JSON would otherwise read as no fields at all: a PATCH would "succeed" changing nothing.
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (hasBody && req.body === undefined) {
      req.resume();
      return next(notJson());
    }
    next();
  });
  app.use('/api', async (req: Request, res: Response, next: NextFunction) => {
    try {
      res.locals.caller = await deps.authenticate(req.headers.authorization);
      next();
    } catch (err) {
      next(err);
    }
  });
  for (const [path, router] of deps.routers) app.use(path, router);

  app.use('/api', (_req, res) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: 'No such endpoint' } });
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const appErr = toAppError(err, (res.locals.log as Logger | undefined) ?? deps.log);
    const { status, headers } = httpOf(appErr);
    res.status(status).set(headers).json(errorBody(appErr));
  });
  return app;
}
