/** An error that maps to one of the contract's error codes. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const validationError = (message: string, details: Record<string, unknown> = {}) =>
  new AppError(400, 'VALIDATION_ERROR', message, details);
export const notJson = () => validationError('Content-Type must be application/json');
export const invalidOption = (optionId: unknown) =>
  new AppError(400, 'INVALID_OPTION', `Option ${String(optionId)} is not an option of this poll`, { option_id: optionId });
export const invalidSelection = (message: string) => new AppError(400, 'INVALID_SELECTION', message);
export const authRequired = (message = 'Sign in to do this') => new AppError(401, 'AUTH_REQUIRED', message);
export const invalidToken = (message = 'The bearer token is malformed, badly signed or expired') =>
  new AppError(401, 'INVALID_TOKEN', message);
export const forbidden = (message = 'You are not allowed to do this') => new AppError(403, 'FORBIDDEN', message);
export const resultsHidden = () =>
  new AppError(403, 'RESULTS_HIDDEN', 'Results of this poll are hidden until it closes');
export const pollNotFound = () => new AppError(404, 'POLL_NOT_FOUND', 'No such poll');
export const notFound = (message: string) => new AppError(404, 'NOT_FOUND', message);
export const pollNotActive = (message = 'This poll is not open for voting') =>
  new AppError(409, 'POLL_NOT_ACTIVE', message);
export const alreadyVoted = () => new AppError(409, 'ALREADY_VOTED', 'You have already voted in this poll');
export const votePending = (retryAfterSeconds: number) =>
  new AppError(409, 'VOTE_PENDING', 'Your previous attempt is still being recorded; try again in a moment', { retry_after: retryAfterSeconds }, {
    'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });
export const pollExpired = () => new AppError(410, 'POLL_EXPIRED', 'This poll has ended');
export const payloadTooLarge = (limit: number) =>
  new AppError(413, 'PAYLOAD_TOO_LARGE', `The body is larger than ${limit} bytes`);
export const rateLimited = (retryAfterSeconds: number) =>
  new AppError(429, 'RATE_LIMITED', 'Too many requests', { retry_after: retryAfterSeconds }, {
    'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });
export const unavailable = (message = 'The service is temporarily unavailable; nothing was accepted') =>
  new AppError(503, 'UNAVAILABLE', message);

/** The JSON body the contract prescribes for an error. */
export function errorBody(err: AppError) {
  return { error: { code: err.code, message: err.message, ...err.details } };
}
