import type { ErrorCode } from '../shared/errors.js';

/**
 * The WebSocket close code of each refusal a watcher can meet (the contract: 4401 bad token,
 * 4403 forbidden or results hidden, 4404 no such poll for this viewer, 1011 unavailable).
 */
export const CLOSE_CODE = {
  INVALID_TOKEN: 4401,
  AUTH_REQUIRED: 4403,
  FORBIDDEN: 4403,
  RESULTS_HIDDEN: 4403,
  POLL_NOT_FOUND: 4404,
  UNAVAILABLE: 1011,
} as const satisfies Partial<Record<ErrorCode, number>>;

export type WatchRefusalCode = keyof typeof CLOSE_CODE;
