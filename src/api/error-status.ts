import type { AppError, ErrorCode } from '../shared/errors.js';

/** The HTTP status of each of the contract's error codes. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  VALIDATION_ERROR: 400,
  INVALID_OPTION: 400,
  INVALID_SELECTION: 400,
  AUTH_REQUIRED: 401,
  INVALID_TOKEN: 401,
  FORBIDDEN: 403,
  RESULTS_HIDDEN: 403,
  ORIGIN_NOT_ALLOWED: 403,
  POLL_NOT_FOUND: 404,
  NOT_FOUND: 404,
  POLL_NOT_ACTIVE: 409,
  POLL_NOT_DRAFT: 409,
  ALREADY_VOTED: 409,
  VOTE_PENDING: 409,
  CONFLICT: 409,
  POLL_EXPIRED: 410,
  PAYLOAD_TOO_LARGE: 413,
  CAPTCHA_REQUIRED: 428,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

/** An error as an HTTP response's status and headers (Retry-After from its `retry_after`). */
export function httpOf(err: AppError): { status: number; headers: Record<string, string> } {
  const retryAfter = err.details.retry_after;
  const headers: Record<string, string> = typeof retryAfter === 'number' ? { 'Retry-After': String(Math.max(1, Math.ceil(retryAfter))) } : {};
  return { status: HTTP_STATUS[err.code], headers };
}
