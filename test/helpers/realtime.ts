import { WebSocket } from 'ws';
import type { Config } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { startRealtime as start, type RealtimeHandle } from '../../src/realtime/gateway.js';

/** A realtime gateway in-process on a free port, with the stack's config plus `overrides`. */
export function startRealtime(config: Config, overrides: Partial<Config> = {}): Promise<RealtimeHandle> {
  const merged = { ...config, ...overrides };
  return start(merged, createLogger(merged.LOG_LEVEL, 'test-realtime'), 0);
}

/** How a watch ended: a close code, or an HTTP status when the upgrade itself was refused. */
export interface WatchEnd {
  code?: number;
  reason?: string;
  status?: number;
}

/** A real WebSocket client that records every results message with its arrival time. */
export interface Watch {
  ws: WebSocket;
  messages: Array<{ at: number; body: any }>;
  ended: Promise<WatchEnd>;
  /** The first message (received or still to come) that satisfies `check`. */
  waitFor(check: (body: any) => boolean, timeoutMs?: number, what?: string): Promise<any>;
  last(): any;
  close(): void;
}

/** Opens `ws://.../ws?poll_id=...` on a gateway with the given query, headers and options. */
export function watch(
  gateway: { url: string },
  query: Record<string, string | number>,
  opts: { headers?: Record<string, string>; autoPong?: boolean } = {},
): Watch {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  const ws = new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/ws?${qs}`, { headers: opts.headers, autoPong: opts.autoPong ?? true });
  const messages: Watch['messages'] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    messages.push({ at: Date.now(), body: JSON.parse(data.toString()) });
    for (const w of waiters) w();
  });
  const ended = new Promise<WatchEnd>((resolve) => {
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode });
      ws.terminate();
    });
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    ws.on('error', () => {});
  });
  return {
    ws,
    messages,
    ended,
    waitFor(check, timeoutMs = 10_000, what = 'a matching message') {
      return new Promise((resolve, reject) => {
        const look = () => {
          const hit = messages.find((m) => check(m.body));
          if (!hit) return false;
          waiters.delete(look);
          clearTimeout(timer);
          resolve(hit.body);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(look);
          reject(new Error(`timed out waiting for ${what}; last message: ${JSON.stringify(messages.at(-1)?.body)}`));
        }, timeoutMs);
        if (!look()) waiters.add(look);
      });
    },
    last: () => messages.at(-1)?.body,
    close: () => ws.close(),
  };
}
