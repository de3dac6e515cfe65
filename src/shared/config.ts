import { z } from 'zod';
import { parseOriginList } from '../domain/origins.js';
import { parseImageHosts } from '../domain/poll-settings.js';

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
  // Comma-separated host:port seeds of a Redis Cluster; when set, every process uses the cluster and REDIS_URL is ignored.
  REDIS_CLUSTER_NODES: z
    .string()
    .optional()
    .transform((v) => v?.trim() || undefined)
    .refine((v) => v === undefined || v.split(',').every((s) => /^\[?[^\]\s]+?\]?:[0-9]{1,5}$/.test(s.trim())), 'must be host:port seeds, comma-separated'),
  // After each vote job is added, wait until this many replicas have it (WAIT), else 503: a failover then loses no 202.
  REDIS_WAIT_REPLICAS: int(0),
  REDIS_WAIT_TIMEOUT_MS: int(200),
  // Partitions of each new poll: each a hash tag of its own (claims, limits, windows). Default 1, or 12 on a cluster.
  VOTE_PARTITIONS: z.coerce.number().int().min(1).max(1024).optional(),
  // Vote queues (partition p goes to queue p mod VOTE_QUEUES), each a hash tag and a committer of
  // its own. Default 1, or 3 on a cluster: one per master of the smallest cluster; set it to the
  // number of masters. Every process must agree, and changing it strands queued jobs.
  VOTE_QUEUES: z.coerce.number().int().min(1).max(1024).optional(),
  // Prefixes every Redis key, channel and queue: lets test runs or tenants share one Redis.
  REDIS_NAMESPACE: z
    .string()
    .regex(/^[a-zA-Z0-9_-]*$/)
    .default(''),
  JWT_SECRET: z.string().min(16).default('dev-only-secret-change-me-in-production'),
  TRUST_PROXY: z.string().optional(),
  ADMIN_USER: z.string().optional(),
  ADMIN_PASSWORD: z.string().optional(),
  // Bull Board shows queues but refuses retries, cleans and deletes unless set to false.
  BULL_BOARD_READ_ONLY: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Past this many votes per address per poll per hour a vote needs a solved CAPTCHA; past the MAX it is refused.
  VOTES_PER_IP_PER_POLL_PER_HOUR: int(10),
  VOTES_PER_IP_PER_POLL_PER_HOUR_MAX: int(1000),
  VIEW_TOKEN_TTL_SECONDS: int(3600),
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
  // How long a stalled worker keeps its job before another worker takes it over (vote queues: VOTE_LOCK_MS).
  WORKER_LOCK_MS: int(30_000),
  VOTE_LOCK_MS: int(5000),
  // A vote queue's commit lease: a dead worker's queues go to the others within about this long.
  COMMIT_LEASE_MS: int(3000),
  // The most votes one commit transaction takes (group commit).
  COMMIT_MAX_VOTES: int(5000),
  // A new voter's claim stays "pending" (VOTE_PENDING to a retry) this long before it lapses, unless confirmed.
  VOTE_PENDING_TTL_MS: int(5000),
  POLL_CACHE_MS: int(1000),
  // While PostgreSQL is unreachable the vote path keeps using the last known poll for this long.
  POLL_CACHE_STALE_MS: int(600_000),
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
  GEO_COUNTRY_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]*$/)
    .transform((h) => h.toLowerCase() || undefined)
    .optional(),
  // Browser origins besides the service's own pages (and each poll's settings.embed_origins) that
  // may call the API; '*' allows any site, so any site can make its visitors vote.
  CORS_ORIGINS: originList,
  // Where option images may come from: '*' any https host, 'none', or hosts (images.example.com,
  // *.cdn.example.com). Each viewer's browser loads an option's image from its host, which so
  // learns the viewer's address: list only hosts you trust to keep anonymous polls anonymous.
  OPTION_IMAGE_HOSTS: z
    .string()
    .default('*')
    .transform((raw, ctx) => {
      const hosts = parseImageHosts(raw);
      if (!hosts) ctx.addIssue({ code: 'custom', message: 'must be *, none, or comma-separated host names (*.example.com for subdomains)' });
      return hosts ?? { any: false, hosts: [] };
    }),
  // Extra origins for the gateway only. It always allows pages on its own host name (the API's
  // pages on another port), CORS_ORIGINS and the watched poll's embed origins.
  WS_ALLOWED_ORIGINS: originList,
  // The gateway's /ws URL as browsers reach it (e.g. wss://live.example/ws); empty = the page's
  // own host name on REALTIME_PORT. Handed to the web pages in a <meta> tag.
  PUBLIC_REALTIME_URL: z
    .string()
    .default('')
    .refine((u) => u === '' || (URL.canParse(u) && /^wss?:$/.test(new URL(u).protocol)), 'must be empty or a ws:// or wss:// URL'),
  // Polls one user may create per hour (0 = no limit): a stolen or scripted token cannot fill the database.
  POLLS_PER_USER_PER_HOUR: int(100),
  // Abuse guard; a load test from one address raises it.
  WS_MAX_CONNECTIONS_PER_IP: int(50),
  // A peer that misses one ping interval's pong is dropped.
  WS_PING_INTERVAL_MS: int(30_000),
  // How long the gateway keeps a poll's feed (subscription and latest results) after its last
  // watcher left: reconnecting clients cost no reload of the poll's results.
  WS_FEED_LINGER_MS: int(30_000),
  // Tokens of the host platform's identity provider (RS256 / ES256), verified beside HS256:
  // its key set, and the `iss` and `aud` its tokens must carry. Unset = HS256 tokens only.
  JWT_JWKS_URL: z
    .string()
    .optional()
    .refine((u) => !u || (URL.canParse(u) && /^https?:$/.test(new URL(u).protocol)), 'must be empty or an http(s) URL'),
  JWT_ISSUER: z.string().optional(),
  JWT_AUDIENCE: z.string().optional(),
  // How far in the future a token's `iat` may lie before it is refused.
  JWT_CLOCK_SKEW_SECONDS: int(60),
  // The pages sign in through that provider (authorization code + PKCE, a public client) when set;
  // its discovery document is read from JWT_ISSUER, and JWT_AUDIENCE is asked for as `resource`.
  OIDC_CLIENT_ID: z.string().optional(),
  OIDC_SCOPE: z.string().default('openid'),
  // The pages' "development sign-in" (any user id, org, admin: POST /api/v1/dev/token). Unset = on
  // unless NODE_ENV is production. Never on for a service others can reach.
  DEV_SIGN_IN: z.enum(['true', 'false']).optional(),
  // Gateway(s) the API forwards /ws upgrades to (comma-separated http:// URLs, one picked per
  // connection), so the pages reach live results on their own origin. Unset = this host's
  // REALTIME_PORT; empty = no forwarding.
  REALTIME_UPSTREAM_URL: z
    .string()
    .optional()
    .refine(
      (v) => !v || v.split(',').every((u) => URL.canParse(u.trim()) && /^(http|ws)s?:$/.test(new URL(u.trim()).protocol)),
      'must be comma-separated http:// or ws:// URLs',
    ),
});

export type Config = Readonly<Omit<z.infer<typeof schema>, 'VOTE_PARTITIONS' | 'VOTE_QUEUES'> & { VOTE_PARTITIONS: number; VOTE_QUEUES: number }>;

/** Parses the environment once; exits with a readable message on bad settings. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    console.error(`Invalid configuration:\n${lines.join('\n')}`);
    process.exit(1);
  }
  const cluster = Boolean(parsed.data.REDIS_CLUSTER_NODES);
  const partitions = parsed.data.VOTE_PARTITIONS ?? (cluster ? 12 : 1);
  // More queues than partitions would leave some empty: each one costs a job per batch window.
  const queues = parsed.data.VOTE_QUEUES ?? Math.min(partitions, cluster ? 3 : 1);
  return Object.freeze({ ...parsed.data, VOTE_PARTITIONS: partitions, VOTE_QUEUES: queues });
}

/** Whether the pages offer the development sign-in (and POST /api/v1/dev/token exists). */
export function devSignInEnabled(config: Pick<Config, 'DEV_SIGN_IN' | 'NODE_ENV'>): boolean {
  return config.DEV_SIGN_IN === undefined ? config.NODE_ENV !== 'production' : config.DEV_SIGN_IN === 'true';
}

/** The gateways the API forwards /ws to: REALTIME_UPSTREAM_URL, by default this host's gateway. */
export function realtimeUpstreams(config: Pick<Config, 'REALTIME_UPSTREAM_URL' | 'REALTIME_PORT'>): URL[] {
  const raw = config.REALTIME_UPSTREAM_URL ?? `http://127.0.0.1:${config.REALTIME_PORT}`;
  return raw
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)
    .map((u) => new URL(u));
}
