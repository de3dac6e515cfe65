import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createDb, pingDatabase } from '../db/client.js';
import { createExportDb } from '../db/analytics.js';
import { hasStoredVote } from '../db/votes.js';
import { createViewTokens } from '../domain/view-token.js';
import { devSignInEnabled, realtimeUpstreams, type Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { createMetricsRegistry } from '../shared/metrics.js';
import { enqueueRollup, openQueue, openVoteQueues, QUEUES, rollupPolls } from '../shared/queues.js';
import { createRedis, pingEveryMaster, redisTargetOf, whenReady } from '../shared/redis.js';
import { redisKeys } from '../shared/redis-keys.js';
import { ADMIN_BOARD_PATH, createAdminBoard } from './admin-board.js';
import { createApp } from './app.js';
import { authOptionsOf, createAuthenticator } from '../shared/auth.js';
import { rememberPeerTrust, trustProxySetting } from '../shared/request.js';
import { createOriginGate } from './origins.js';
import { parseOriginList } from '../domain/origins.js';
import { createApiMetrics } from './metrics.js';
import { analyticsRouter, pollViewRecorder } from './routes/analytics.js';
import { captchaRouter } from './routes/captcha.js';
import { moderationRouter } from './routes/moderation.js';
import { pagesRouter } from './routes/pages.js';
import { pollsRouter } from './routes/polls.js';
import { resultsRouter } from './routes/results.js';
import { createVoteRoute } from './routes/votes.js';
import { createAnalyticsService } from './services/analytics.js';
import { createCaptcha, type Captcha } from './services/captcha.js';
import { createExportSlots } from './services/export-slots.js';
import { createModerationService } from './services/moderation.js';
import { createPollCache } from './services/poll-cache.js';
import { createPollService } from './services/polls.js';
import { createResultsService } from './services/results.js';
import { createVoteAdmission } from './services/vote-admission.js';
import { createVoteService } from './services/votes.js';
import { createVoteBatcher } from './vote-batcher.js';
import { devRouter } from './routes/dev.js';
import { pollModerationRouter } from './routes/poll-moderation.js';
import { myVoteRouter } from './routes/my-vote.js';
import { createRealtimeProxy } from './realtime-proxy.js';
import { createCreationLimit } from './services/creation-limit.js';

/** A running API process: HTTP server plus its connections, closed in order by close(). */
export interface ApiHandle {
  server: http.Server;
  url: string;
  /** The Express app behind the server (every route but the vote path); tests read its routes. */
  app: ReturnType<typeof createApp>;
  close(): Promise<void>;
}

/** Builds and starts the API (Express app plus the bare vote route) on `port` (0 = any). */
export async function startApi(config: Config, log: Logger, port = config.PORT): Promise<ApiHandle> {
  const keys = redisKeys(config.REDIS_NAMESPACE);
  const target = redisTargetOf(config);
  const db = createDb(config.DATABASE_URL, 20);
  // Fail-fast clients: a vote must get 503 at once while Redis is away, not wait in a buffer.
  const redis = createRedis(target, { failFast: true, enableAutoPipelining: true, name: 'api' });
  const subscriber = createRedis(target, { name: 'api-sub', shardedSubscriber: true });
  const queueConnection = createRedis(target, { failFast: true, name: 'api-queue' });
  const queueCtx = { connection: queueConnection, keys, logger: log };
  const voteQueues = openVoteQueues(queueCtx, config.VOTE_QUEUES);
  const lifecycleQueue = openQueue(QUEUES.lifecycle, queueCtx);
  const flagQueue = openQueue(QUEUES.flagging, queueCtx);
  const analyticsQueue = openQueue(QUEUES.analytics, queueCtx);
  const queues = [...voteQueues, lifecycleQueue, flagQueue, analyticsQueue];
  const exportDb = createExportDb(config.DATABASE_URL, config.EXPORT_POOL_SIZE, config.EXPORT_TIMEOUT_MS);

  const metrics = createMetricsRegistry('api');
  const apiMetrics = createApiMetrics(metrics);
  const authenticate = createAuthenticator(authOptionsOf(config));
  const viewTokens = createViewTokens(config.JWT_SECRET, config.VIEW_TOKEN_TTL_SECONDS * 1000);
  const pollCache = createPollCache({ db, subscriber, keys, ttlMs: config.POLL_CACHE_MS, staleMs: config.POLL_CACHE_STALE_MS });
  const batcher = createVoteBatcher(voteQueues, {
    maxBatch: config.VOTE_BATCH_MAX,
    maxWaitMs: config.VOTE_BATCH_MS,
    wait: { replicas: config.REDIS_WAIT_REPLICAS, timeoutMs: config.REDIS_WAIT_TIMEOUT_MS, connection: queueConnection },
  });
  const captcha = createCaptcha({
    secret: config.JWT_SECRET,
    redis,
    usedKey: keys.captchaUsed,
    maxNumber: config.CAPTCHA_MAX_NUMBER,
    ttlSeconds: config.CAPTCHA_TTL_SECONDS,
  });
  // Counted here, around the service, so the vote path's internals stay untouched.
  const countedCaptcha: Captcha = {
    ...captcha,
    async redeem(raw) {
      const solved = await captcha.redeem(raw);
      apiMetrics.integrityDecisions.inc({ check: 'captcha', outcome: solved ? 'solved' : 'failed' });
      return solved;
    },
  };
  const castVote = createVoteService({
    polls: pollCache,
    hasStoredVote: (pollId, voterKey) => hasStoredVote(db, pollId, voterKey),
    admission: createVoteAdmission(redis, queueConnection),
    batcher,
    keys,
    viewTokens,
    pendingTtlMs: config.VOTE_PENDING_TTL_MS,
    voteQueues: config.VOTE_QUEUES,
    integrity: {
      enabled: config.FRAUD_DEFENCES === 'on',
      ipSoft: config.VOTES_PER_IP_PER_POLL_PER_HOUR,
      ipHard: Math.max(config.VOTES_PER_IP_PER_POLL_PER_HOUR, config.VOTES_PER_IP_PER_POLL_PER_HOUR_MAX),
      prefixLimit: config.PREFIX_VOTES_LIMIT,
      prefixWindowMs: config.PREFIX_WINDOW_SECONDS * 1000,
      captcha: countedCaptcha,
      minResponseMs: config.MIN_RESPONSE_MS,
      flagPrefix: (job) => flagQueue.add('flag-prefix', job),
      onFlagged: (reason, n) => apiMetrics.votesFlagged.inc({ reason }, n),
      onFlagJobFailed: (err) => log.error({ err }, 'could not queue a prefix flagging job'),
    },
  });
  const moderation = createModerationService({
    db,
    publisher: redis,
    keys,
    onReviewed: (decision) => apiMetrics.reviews.inc({ decision }),
    onCountsChanged: rollupPolls(analyticsQueue, config.ANALYTICS_ROLLUP_DELAY_MS, log),
  });
  const polls = createPollService({
    db,
    redis,
    keys,
    lifecycle: lifecycleQueue,
    pendingTtlMs: config.VOTE_PENDING_TTL_MS,
    partitions: config.VOTE_PARTITIONS,
    imageHosts: config.OPTION_IMAGE_HOSTS,
    creationLimit: createCreationLimit(redis, keys.pollCreations, config.POLLS_PER_USER_PER_HOUR),
    onClosed: (pollId) => enqueueRollup(analyticsQueue, pollId, 0),
  });
  const analytics = createAnalyticsService({
    db,
    exportDb,
    polls: pollCache,
    redis,
    keys,
    rollups: analyticsQueue,
    log,
    // A slot outlives the longest export a little: it is released when the response ends.
    exportSlots: createExportSlots({ redis, key: keys.exportSlots, limit: config.EXPORTS_PER_CALLER, ttlMs: config.EXPORT_TIMEOUT_MS + 60_000 }),
  });
  const results = createResultsService({ db, polls: pollCache, cacheMs: 200 });

  const trustProxy = trustProxySetting(config.TRUST_PROXY);
  let closing = false;
  // Only a configured user name and password mount the board: JWT_SECRET always has a value,
  // so an admin token alone would expose it on every default install. Once mounted, an admin
  // token is accepted as well as the password.
  const board =
    config.ADMIN_USER && config.ADMIN_PASSWORD
      ? createAdminBoard({ queues, user: config.ADMIN_USER, password: config.ADMIN_PASSWORD, authenticate, readOnly: config.BULL_BOARD_READ_ONLY })
      : null;
  const app = createApp({
    log,
    httpDuration: apiMetrics.httpDuration,
    authenticate,
    trustProxy,
    metrics,
    ready: async () => {
      if (closing) return false;
      const [, redisReady] = await Promise.all([pingDatabase(db), pingEveryMaster(redis)]);
      return redisReady;
    },
    routers: [
      ['/api/v1/polls', pollsRouter({ polls, viewTokens, onView: pollViewRecorder(analytics) })],
      ['/api/v1/polls', analyticsRouter({ analytics, exportIdleMs: config.EXPORT_IDLE_MS })],
      ['/api/v1/polls', resultsRouter({ results })],
      ['/api/v1/captcha', captchaRouter({ captcha })],
      ['/api/v1/admin', moderationRouter({ moderation })],
      ['/api/v1/polls', pollModerationRouter({ moderation })],
      ['/api/v1/polls', myVoteRouter({ db })],
      ...(devSignInEnabled(config) ? [['/api/v1/dev', devRouter({ secret: config.JWT_SECRET })] as [string, ReturnType<typeof devRouter>]] : []),
      ...(board ? [[ADMIN_BOARD_PATH, board] as [string, typeof board]] : []),
      [
        '/',
        pagesRouter({
          publicRealtimeUrl: config.PUBLIC_REALTIME_URL,
          imageHosts: config.OPTION_IMAGE_HOSTS,
          signIn: {
            dev: devSignInEnabled(config),
            ...(config.OIDC_CLIENT_ID && config.JWT_ISSUER
              ? { oidc: { issuer: config.JWT_ISSUER, clientId: config.OIDC_CLIENT_ID, scope: config.OIDC_SCOPE, resource: config.JWT_AUDIENCE } }
              : {}),
          },
          embedOriginsOf: (pollId, key) => polls.embedOrigins(pollId, key),
        }),
      ],
    ],
  });
  const voteRoute = createVoteRoute({
    castVote,
    authenticate,
    trust: rememberPeerTrust(app.get('trust proxy fn')),
    log,
    countryHeader: config.GEO_COUNTRY_HEADER,
    onResult(status, code, changed, startedAt) {
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      apiMetrics.votePathSeconds.observe(seconds);
      apiMetrics.httpDuration.observe({ method: 'POST', route: '/api/v1/polls/:id/votes', status }, seconds);
      if (status === 202) apiMetrics.votesAccepted.inc({ changed: String(changed) });
      else {
        apiMetrics.votesRejected.inc({ code: code ?? 'UNKNOWN' });
        if (code === 'ALREADY_VOTED') apiMetrics.dedupHits.inc();
        else if (code === 'RATE_LIMITED') apiMetrics.integrityDecisions.inc({ check: 'rate_limit', outcome: 'limited' });
        else if (code === 'CAPTCHA_REQUIRED') apiMetrics.integrityDecisions.inc({ check: 'captcha', outcome: 'required' });
      }
    },
  });

  const originGate = createOriginGate({
    configured: parseOriginList(config.CORS_ORIGINS),
    embedOriginsOf: async (pollId) => (await pollCache.get(pollId))?.poll.settings.embed_origins ?? [],
    trust: app.get('trust proxy fn'),
    log,
    onRefused: () => apiMetrics.originsRefused.inc(),
  });
  const dispatch = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!voteRoute(req, res)) app(req, res);
  };
  if (devSignInEnabled(config) && config.NODE_ENV === 'production') {
    log.warn('DEV_SIGN_IN is on in production: anyone who reaches POST /api/v1/dev/token can sign in as any user, admins included');
  }
  const realtimeProxy = createRealtimeProxy({ upstreams: realtimeUpstreams(config), trust: app.get('trust proxy fn'), log });
  const server = http.createServer((req, res) => {
    // Keep-alive clients would otherwise keep a closing server busy forever.
    if (closing) res.setHeader('Connection', 'close');
    const origin = req.headers.origin;
    if (origin !== undefined && req.url?.startsWith('/api/')) {
      // Every API route, the vote fast path too; a preflight or a refusal is answered here and goes no further.
      const verdict = originGate(req, res, origin);
      if (verdict === false) return;
      if (verdict !== true) {
        void verdict.then((go) => go && dispatch(req, res));
        return;
      }
    }
    dispatch(req, res);
  });
  server.keepAliveTimeout = 65_000;
  server.on('upgrade', (req, socket, head) => {
    if (closing) return socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    realtimeProxy.onUpgrade(req, socket as Socket, head);
  });
  // Fail-fast clients refuse commands until connected: answer the first requests only once Redis is there.
  await whenReady(redis, 10_000);
  await new Promise<void>((resolve) => server.listen(port, resolve));
  const url = `http://localhost:${(server.address() as AddressInfo).port}`;

  return {
    server,
    url,
    app,
    async close() {
      // Stop taking requests, let in-flight ones finish, then flush accepted votes into the queue.
      // Connections that go idle after their last answer are swept too (close() only closes those idle now).
      closing = true;
      realtimeProxy.closeAll();
      await new Promise<void>((resolve) => {
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        server.close(() => {
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      });
      await batcher.drain();
      await Promise.allSettled(queues.map((q) => q.close()));
      subscriber.disconnect();
      redis.disconnect();
      queueConnection.disconnect();
      await db.destroy();
      await exportDb.destroy();
    },
  };
}
