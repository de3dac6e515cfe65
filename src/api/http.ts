import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { AppError, errorBody, internalError, notJson, payloadTooLarge, unavailable, validationError } from '../shared/errors.js';
import { httpOf } from './error-status.js';
import type { Logger } from '../shared/logger.js';

/** Writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
}

// Socket errors, PostgreSQL's connection-exception class (08) and shutdown codes (57P0x).
const DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03']);
const DOWN_MESSAGES =
  /Connection (is closed|terminated)|enableOfflineQueue|Reached the max retries|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/** A PostgreSQL or Redis connection failure (as opposed to a bug): answered 503, not 500. */
export function isBackendDown(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && (DOWN_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  if (typeof e.message === 'string' && DOWN_MESSAGES.test(e.message)) return true;
  return Array.isArray(e.errors) && e.errors.some(isBackendDown);
}

/** Maps any error to the contract's error body; unknown errors become a logged 500 with no details. */
export function toAppError(err: unknown, log: Logger): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof z.ZodError) return zodToValidationError(err);
  const e = err as { type?: string; status?: number };
  if (e?.type === 'entity.too.large') return payloadTooLarge((err as { limit?: number }).limit ?? 64 * 1024);
  if (e?.type === 'entity.parse.failed') return validationError('The body is not valid JSON');
  if (e?.type && e.status && e.status < 500) return validationError('The request body could not be read');
  if (isBackendDown(err)) {
    log.warn({ err: (err as Error).message }, 'PostgreSQL or Redis unreachable');
    return unavailable();
  }
  log.error({ err }, 'unhandled error');
  return internalError();
}

/** The field an issue is about: its path, and for unknown keys the (first) key itself. */
function issueField(issue: z.core.$ZodIssue): string {
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
  return path.map(String).join('.');
}

/** A zod failure as VALIDATION_ERROR naming the first offending field. */
export function zodToValidationError(err: z.ZodError): AppError {
  const first = err.issues[0];
  const field = first ? issueField(first) || undefined : undefined;
  return validationError(field ? `${field}: ${first.message}` : (first?.message ?? 'Invalid input'), {
    field,
    issues: err.issues.slice(0, 10).map((i) => ({ field: issueField(i), message: i.message })),
  });
}

export function sendError(res: ServerResponse, err: unknown, log: Logger): void {
  const appErr = toAppError(err, log);
  const { status, headers } = httpOf(appErr);
  sendJson(res, status, errorBody(appErr), headers);
}

/** Reads and parses a JSON body of at most `limit` bytes; 413 / 400 otherwise (400 too for a body the client never finished). */
export function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const type = req.headers['content-type'];
    if (!type || !/^application\/json\b/i.test(type)) {
      // Only JSON: a text/plain cross-site form post must not be able to vote for a visitor.
      req.resume();
      reject(notJson());
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      req.resume();
      reject(payloadTooLarge(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(payloadTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    req.on('end', () => {
      ended = true;
      if (size > limit) return;
      try {
        resolve(JSON.parse(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(validationError('The body is not valid JSON'));
      }
    });
    // A client that goes away mid-upload (ECONNRESET, "aborted") is the client's doing: never
    // "PostgreSQL or Redis unreachable", never counted as a backend failure.
    req.on('error', () => reject(bodyCutShort()));
    req.on('close', () => {
      if (!ended) reject(bodyCutShort());
    });
  });
}

const bodyCutShort = () => validationError('The request body was cut short');
