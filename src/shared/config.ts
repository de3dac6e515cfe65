import { z } from 'zod';
import { parseOriginList } from '../domain/origins.js';

const int = (def: number) => z.coerce.number().int().nonnegative().default(def);

const originList = z
  .string()
  .default('')
  .superRefine((raw, ctx) => {
    const { invalid } = parseOriginList(raw);
    if (invalid.length) ctx.addIssue({ code: 'custom', message: `not origins (scheme://host[:port], comma-separated, or *): ${invalid.join(', ')}` });
  });

const schema = z.object({
  NODE_ENV: z.string().default('development'),
  PORT: int(3000),
  REALTIME_PORT: int(3001),
  WORKER_METRICS_PORT: int(3002),
  DATABASE_URL: z.string().default('postgres://postgres@localhost:5432/polls'),
  REDIS_URL: z.string().default('redis://localhost:6379'),
  // Prefixes every Redis key, channel and queue: lets test runs or tenants share one Redis.
  REDIS_NAMESPACE: z.string().regex(/^[a-zA-Z0-9_-]*$/).default(''),
  JWT_SECRET: z.string().min(16).default('dev-only-secret-change-me-in-production'),
  TRUST_PROXY: z.string().optional(),
  ADMIN_USER: z.string().optional(),
  ADMIN_PASSWORD: z.string().optional(),
  // Bull Board shows queues but refuses retries, cleans and deletes unless set to false.
  BULL_BOARD_READ_ONLY: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  VOTES_PER_IP_PER_POLL_PER_HOUR: int(10),
  PREFIX_VOTES_LIMIT: int(50),
  PREFIX_WINDOW_SECONDS: int(600),
  MIN_RESPONSE_MS: int(1000),
  // Per-IP limits, prefix velocity and CAPTCHA; `off` only to measure their cost (bench:votes).
  FRAUD_DEFENCES: z.enum(['on', 'off']).default('on'),
  CAPTCHA_MAX_NUMBER: int(100_000),
  CAPTCHA_TTL_SECONDS: int(300),
  // The API groups accepted votes into one queue job per VOTE_BATCH_MS or VOTE_BATCH_MAX votes.
  VOTE_BATCH_MS: int(10),
  VOTE_BATCH_MAX: int(500),
  WORKER_CONCURRENCY: int(4),
  // How long a stalled worker keeps its job before another worker takes it over.
  WORKER_LOCK_MS: int(30_000),
  // Votes go through SET NX dedup while "pending" for this long before the claim lapses.
  VOTE_PENDING_TTL_MS: int(30_000),
  POLL_CACHE_MS: int(1000),
  // Analytics: a rollup runs this long after votes land (coalesced per poll).
  ANALYTICS_ROLLUP_DELAY_MS: int(2000),
  // CSV exports: the longest one may run (PostgreSQL's statement_timeout on the export pool), how
  // long one may wait on a client that reads nothing, and how many one caller may run at once
  // (over every API process); the export pool has EXPORT_POOL_SIZE connections per process.
  EXPORT_TIMEOUT_MS: int(300_000),
  EXPORT_IDLE_MS: int(30_000),
  EXPORTS_PER_CALLER: int(2),
  EXPORT_POOL_SIZE: int(4),
  // Where a trusted CDN sets the visitor's country (e.g. cf-ipcountry); unset = offline IP database.
  GEO_COUNTRY_HEADER: z.string().regex(/^[A-Za-z0-9-]*$/).transform((h) => h.toLowerCase() || undefined).optional(),
  // Browser origins besides the service's own pages (and each poll's settings.embed_origins) that
  // may call the API; '*' allows any site, so any site can make its visitors vote.
  CORS_ORIGINS: originList,
  // Extra origins for the gateway only. It always allows pages on its own host name (the API's
  // pages on another port), CORS_ORIGINS and the watched poll's embed origins.
  WS_ALLOWED_ORIGINS: originList,
  // The gateway's /ws URL as browsers reach it (e.g. wss://live.example/ws); empty = the page's
  // own host name on REALTIME_PORT. Handed to the web pages in a <meta> tag.
  PUBLIC_REALTIME_URL: z
    .string()
    .default('')
    .refine((u) => u === '' || (URL.canParse(u) && /^wss?:$/.test(new URL(u).protocol)), 'must be empty or a ws:// or wss:// URL'),
  // Abuse guard; a load test from one address raises it.
  WS_MAX_CONNECTIONS_PER_IP: int(50),
  // A peer that misses one ping interval's pong is dropped.
  WS_PING_INTERVAL_MS: int(30_000),
  // How long the gateway keeps a poll's feed (subscription and latest results) after its last
  // watcher left: reconnecting clients cost no reload of the poll's results.
  WS_FEED_LINGER_MS: int(30_000),
});

export type Config = Readonly<z.infer<typeof schema>>;

/** Parses the environment once; exits with a readable message on bad settings. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    console.error(`Invalid configuration:\n${lines.join('\n')}`);
    process.exit(1);
  }
  return Object.freeze(parsed.data);
}
