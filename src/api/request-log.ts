import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../shared/logger.js';

// A caller's id is kept only when it cannot smuggle anything into a log line or a header.
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
// Scraped every few seconds: at info level they would drown the lines that matter.
const QUIET_PATHS = new Set(['/metrics', '/healthz', '/readyz']);

/** The route template of a finished Express request ("/api/v1/polls/:id"): never raw ids or query strings. */
export function routeTemplate(req: Request): string {
  return req.route?.path ? `${req.baseUrl}${req.route.path}` : req.baseUrl || 'unmatched';
}

/**
 * Gives every Express request an id (the caller's X-Request-Id when sane, else a fresh one),
 * echoes it in the response, puts a child logger carrying it in `res.locals.log`, and logs
 * one line per request: method, route template, status, duration. No IPs, tokens or query
 * strings (a PRIVATE poll's key travels in one).
 */
export function requestLogger(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', id);
    const reqLog = log.child({ reqId: id });
    res.locals.log = reqLog;
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const level = res.statusCode >= 500 ? 'error' : QUIET_PATHS.has(req.originalUrl.split('?')[0]) ? 'debug' : 'info';
      const ms = Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100;
      reqLog[level]({ method: req.method, route: routeTemplate(req), status: res.statusCode, ms }, 'request');
    });
    next();
  };
}
