/**
 * The contract's error codes, as outcomes of the rules: what went wrong, never how a transport
 * says it. The HTTP status of each lives in `src/api/error-status.ts`, the WebSocket close code
 * in `src/realtime/close-codes.ts`.
 */
export type ErrorCode =
  | 'VALIDATION_ERROR'
  | 'INVALID_OPTION'
  | 'INVALID_SELECTION'
  | 'AUTH_REQUIRED'
  | 'INVALID_TOKEN'
  | 'FORBIDDEN'
  | 'RESULTS_HIDDEN'
  | 'ORIGIN_NOT_ALLOWED'
  | 'POLL_NOT_FOUND'
  | 'NOT_FOUND'
  | 'POLL_NOT_ACTIVE'
  | 'POLL_NOT_DRAFT'
  | 'ALREADY_VOTED'
  | 'VOTE_PENDING'
  | 'CONFLICT'
  | 'POLL_EXPIRED'
  | 'PAYLOAD_TOO_LARGE'
  | 'CAPTCHA_REQUIRED'
  | 'RATE_LIMITED'
  | 'INTERNAL'
  | 'UNAVAILABLE';

/** A refusal by the rules: one of the contract's codes (narrowed to those a rule can give) and a message for people. */
export interface Refusal<C extends ErrorCode = ErrorCode> {
  code: C;
  message: string;
}

/** An error that is one of the contract's error codes; `details` go into the error body (`retry_after` also becomes Retry-After). */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  static of(refusal: Refusal): AppError {
    return new AppError(refusal.code, refusal.message);
  }
}

export const validationError = (message: string, details: Record<string, unknown> = {}) => new AppError('VALIDATION_ERROR', message, details);
export const notJson = () => validationError('Content-Type must be application/json');
export const invalidOption = (optionId: unknown) =>
  new AppError('INVALID_OPTION', `Option ${String(optionId)} is not an option of this poll`, { option_id: optionId });
export const invalidSelection = (message: string) => new AppError('INVALID_SELECTION', message);
export const authRequired = (message = 'Sign in to do this') => new AppError('AUTH_REQUIRED', message);
export const invalidToken = (message = 'The bearer token is malformed, badly signed or expired') => new AppError('INVALID_TOKEN', message);
export const forbidden = (message = 'You are not allowed to do this') => new AppError('FORBIDDEN', message);
export const pollNotFound = () => new AppError('POLL_NOT_FOUND', 'No such poll');
export const notFound = (message: string) => new AppError('NOT_FOUND', message);
export const pollNotActive = (message = 'This poll is not open for voting') => new AppError('POLL_NOT_ACTIVE', message);
export const alreadyVoted = () => new AppError('ALREADY_VOTED', 'You have already voted in this poll');
/** This voter's previous attempt is not confirmed yet (a request that died mid-way): retry in a moment. */
export const votePending = (retryAfterSeconds: number) =>
  new AppError('VOTE_PENDING', 'Your previous vote is still being recorded; retry in a moment', { retry_after: retryAfterSeconds });
export const pollExpired = () => new AppError('POLL_EXPIRED', 'This poll has ended');
export const payloadTooLarge = (limit: number) => new AppError('PAYLOAD_TOO_LARGE', `The body is larger than ${limit} bytes`);
export const rateLimited = (retryAfterSeconds: number) => new AppError('RATE_LIMITED', 'Too many requests', { retry_after: retryAfterSeconds });
export const captchaRequired = (message: string, challenge?: unknown) =>
  new AppError('CAPTCHA_REQUIRED', message, challenge === undefined ? {} : { challenge });
export const conflict = (message: string) => new AppError('CONFLICT', message);
export const pollNotDraft = () => new AppError('POLL_NOT_DRAFT', 'Only a DRAFT poll can be published');
export const originNotAllowed = () =>
  new AppError('ORIGIN_NOT_ALLOWED', "Requests from this web page are not allowed: only the service's own pages, CORS_ORIGINS and the poll's embed origins");
export const internalError = () => new AppError('INTERNAL', 'Something went wrong on our side');
export const unavailable = (message = 'The service is temporarily unavailable; nothing was accepted') => new AppError('UNAVAILABLE', message);

/** The JSON body the contract prescribes for an error. */
export function errorBody(err: AppError) {
  return { error: { code: err.code, message: err.message, ...err.details } };
}
