import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import proxyaddr from 'proxy-addr';
import { WebSocketServer, type WebSocket } from 'ws';
import { clientIp, parseId, trustProxySetting } from '../shared/request.js';
import { authOptionsOf, createAuthenticator, createTokenVerifier, type Principal } from '../shared/auth.js';
import { createDb, pingDatabase } from '../db/client.js';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { createMetricsRegistry, prom } from '../shared/metrics.js';
import { createOpsHandler } from '../shared/ops-server.js';
import { createRedis, redisTargetOf } from '../shared/redis.js';
import { redisKeys } from '../shared/redis-keys.js';
import { isOriginAllowed, parseOriginList, type OriginList } from '../domain/origins.js';
import { createAccessFacts, refusalFor, refusalOf, type CloseRefusal, type Viewer } from './access.js';
import { CLOSE_CODE } from './close-codes.js';
import { createPollFeeds, type Watcher } from './poll-feeds.js';

// Clients send nothing meaningful; anything bigger than this closes the socket with 1009.
const MAX_CLIENT_FRAME_BYTES = 1024;
const SHUTDOWN_GRACE_MS = 3000;

/** A running realtime gateway. */
export interface RealtimeHandle {
  server: http.Server;
  /** http://host:port; the WebSocket endpoint is `/ws` on the same port. */
  url: string;
  /** The Redis connection name of the pub/sub subscriber (operators and tests can find it in CLIENT LIST). */
  subscriberName: string;
  close(): Promise<void>;
}

// setTimeout's longest delay; a token valid for longer than ~24 days is not timed.
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Connection extends Watcher {
  pollId: number;
  viewer: Viewer;
  /** Asked with `hidden=wait`: while results are hidden, hold the socket and reveal them at close. */
  waitHidden: boolean;
  alive: boolean;
  pingedAt: number;
}

/** Starts the WebSocket gateway, with /metrics, /healthz and /readyz on the same port (0 = any). */
export async function startRealtime(config: Config, log: Logger, port = config.REALTIME_PORT): Promise<RealtimeHandle> {
  const keys = redisKeys(config.REDIS_NAMESPACE);
  const db = createDb(config.DATABASE_URL, 8);
  const subscriberName = `realtime-sub-${process.pid}-${randomBytes(3).toString('hex')}`;
  // One subscriber connection for the whole process, subscribed per watched poll.
  const subscriber = createRedis(redisTargetOf(config), { name: subscriberName, shardedSubscriber: true });
  const access = createAccessFacts(db, config.POLL_CACHE_MS);
  const authenticate = createAuthenticator(authOptionsOf(config));
  // One key set cache for both ways a token arrives.
  const verifyToken = createTokenVerifier(authenticate);
  const trust = compileTrust(trustProxySetting(config.TRUST_PROXY));
  // The API's rule (own pages, CORS_ORIGINS, the poll's embed origins) plus WS_ALLOWED_ORIGINS.
  const corsOrigins = parseOriginList(config.CORS_ORIGINS);
  const wsOrigins = parseOriginList(config.WS_ALLOWED_ORIGINS);
  const allowedOrigins: OriginList = { any: corsOrigins.any || wsOrigins.any, origins: new Set([...corsOrigins.origins, ...wsOrigins.origins]) };

  const connections = new Set<Connection>();
  const perIp = new Map<string, number>();
  let closing = false;

  const metrics = createMetricsRegistry('realtime');
  const registers = [metrics];
  new prom.Gauge({
    name: 'realtime_open_connections',
    help: 'Open WebSocket connections',
    registers,
    collect() {
      this.set(connections.size);
    },
  });
  new prom.Gauge({
    name: 'realtime_watched_polls',
    help: 'Polls with at least one watcher',
    registers,
    collect() {
      this.set(feeds.size());
    },
  });
  const messagesSent = new prom.Counter({ name: 'realtime_messages_sent_total', help: 'Results messages sent to clients', registers });
  const slowDropped = new prom.Counter({ name: 'realtime_slow_consumers_dropped_total', help: 'Clients dropped for not reading', registers });
  const reconnects = new prom.Counter({ name: 'realtime_pubsub_reconnects_total', help: 'Reconnects of the Redis subscriber', registers });
  // Reasons are a fixed set (origin, ip_limit, close codes): never a poll id or an address.
  const refused = new prom.Counter({
    name: 'realtime_connections_refused_total',
    help: 'Refused WebSocket connections by reason',
    labelNames: ['reason'],
    registers,
  });

  const feeds = createPollFeeds({
    db,
    subscriber,
    keys,
    onSent: (n) => messagesSent.inc(n),
    onSlowConsumerDropped: () => slowDropped.inc(),
    lingerMs: config.WS_FEED_LINGER_MS,
  });

  void subscriber.ssubscribe(keys.pollInvalidations).catch(() => {});
  subscriber.on('smessage', (channel: string, message: string) => {
    // A failed re-check leaves the watchers be; the next change or reconnect decides again.
    if (channel === keys.pollInvalidations) recheckWatchers(Number(message)).catch(() => {});
  });

  let connectedOnce = false;
  let resyncRunning = false;
  let resyncWanted = false;
  const onReconnect = () => {
    if (connectedOnce) {
      reconnects.inc();
      log.warn('Redis subscriber reconnected; re-reading every watched poll');
      void resync();
    }
    connectedOnce = true;
  };
  subscriber.on('ready', onReconnect);
  // On a cluster each master has its own subscriber connection: a new one (a failover) may have missed messages.
  subscriber.on('+subscriber', () => connectedOnce && onReconnect());
  async function resync(): Promise<void> {
    resyncWanted = true;
    if (resyncRunning) return;
    resyncRunning = true;
    // Until it succeeds, and once more after a reconnect that came while it ran: a client must
    // not stay on numbers that missed a lost message.
    while (resyncWanted && !closing && subscriber.status === 'ready') {
      resyncWanted = false;
      try {
        await feeds.resync();
        // Poll changes announced while we were away were lost too: who may watch is decided again.
        await Promise.all(feeds.pollIds().map(recheckWatchers));
      } catch (err) {
        resyncWanted = true;
        log.warn({ err }, 'resync after reconnect failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    resyncRunning = false;
  }

  /** A poll changed (visibility of results, status): watchers who may no longer see it are let go. */
  async function recheckWatchers(pollId: number): Promise<void> {
    access.invalidate(pollId);
    const watchers = [...feeds.watchersOf(pollId)] as Connection[];
    if (watchers.length === 0) return;
    const facts = await access.get(pollId);
    for (const c of watchers) {
      const refusal = refusalFor(facts, c.viewer);
      if (refusal?.reason === 'RESULTS_HIDDEN' && c.waitHidden) {
        if (!c.withheld) withhold(c);
      } else if (refusal) c.ws.close(refusal.code, refusal.reason);
      else if (c.withheld) {
        // Closed, or shown before close after all: the results it waited for, now.
        c.withheld = false;
        c.sent = null;
        feeds.deliverNow(pollId, c);
      }
    }
  }

  /** Holds a watcher of hidden results: it is told so, and gets nothing until the final state. */
  function withhold(c: Connection): void {
    c.withheld = true;
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify({ type: 'hidden', poll_id: c.pollId, reason: 'RESULTS_HIDDEN' }));
  }

  // One wait for the subscriber shared by every connection that arrives while it reconnects.
  let reconnected: Promise<void> | null = null;
  /** Whether the subscriber is ready, waiting a moment for it: a reconnect blip should not turn watchers away. */
  function subscriberReady(waitMs = 3000): Promise<boolean> {
    if (subscriber.status === 'ready') return Promise.resolve(true);
    reconnected ??= new Promise<void>((resolve) =>
      subscriber.once('ready', () => {
        reconnected = null;
        resolve();
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([reconnected.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, waitMs, false)))]).finally(() =>
      clearTimeout(timer),
    );
  }

  /** Decides a watch request before any data flows: a Viewer and poll, the close code, or an HTTP refusal of the upgrade. */
  async function admit(
    req: http.IncomingMessage,
    embedOrigin: string | null,
  ): Promise<{ pollId: number; viewer: Viewer; expiresAt?: number; waitHidden: boolean; withheld: boolean } | CloseRefusal | { status: 403 }> {
    const params = new URL(req.url ?? '/', 'http://gateway').searchParams;
    const pollId = parseId(params.get('poll_id') ?? undefined);
    if (pollId === null) return embedOrigin === null ? refusalOf('POLL_NOT_FOUND') : { status: 403 };
    let caller: Principal | null;
    try {
      const token = params.get('token');
      caller = token ? await verifyToken(token) : await authenticate(req.headers.authorization);
    } catch {
      return refusalOf('INVALID_TOKEN');
    }
    const viewer: Viewer = { caller, key: params.get('key') ?? undefined };
    const facts = await access.get(pollId);
    const refusal = refusalFor(facts, viewer);
    // An origin only the poll may allow counts only for a poll this watcher may find at all:
    // a made-up Origin must tell nothing about drafts or private polls.
    if (
      embedOrigin !== null &&
      (!facts || refusal?.reason === 'POLL_NOT_FOUND' || !isOriginAllowed(embedOrigin, hostOf(req), allowedOrigins, facts.embed_origins, { anyPort: true }))
    ) {
      return { status: 403 };
    }
    // Opt-in, so clients written against 4403 RESULTS_HIDDEN keep getting it.
    const waitHidden = params.get('hidden') === 'wait';
    const withheld = refusal?.reason === 'RESULTS_HIDDEN' && waitHidden;
    if (refusal && !withheld) return refusal;
    // Without the subscriber no snapshot would come and no update follow: say so rather than hang.
    if (!(await subscriberReady())) return refusalOf('UNAVAILABLE');
    return { pollId, viewer, expiresAt: caller?.expiresAt, waitHidden, withheld };
  }

  /** The host the browser connected to: a trusted proxy's X-Forwarded-Host, else Host. */
  function hostOf(req: http.IncomingMessage): string | undefined {
    const forwarded = req.headers['x-forwarded-host'];
    if (typeof forwarded === 'string' && forwarded !== '' && trust(req.socket.remoteAddress ?? '', 0)) return forwarded.split(',')[0].trim();
    return req.headers.host;
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });

  async function onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => {});
    if ((req.url ?? '').split('?')[0] !== '/ws') return rejectUpgrade(socket, 404, 'Not Found');
    if (closing) return rejectUpgrade(socket, 503, 'Service Unavailable');
    // Browsers only (no Origin header: not a browser, so the header would prove nothing anyway):
    // pages on the gateway's own host name (the API serves them on its port), CORS_ORIGINS and
    // WS_ALLOWED_ORIGINS here, the watched poll's embed origins once the poll is known.
    const origin = req.headers.origin;
    const embedOrigin = origin !== undefined && !isOriginAllowed(origin, hostOf(req), allowedOrigins, [], { anyPort: true }) ? origin : null;
    if (embedOrigin !== null && !/[?&]poll_id=[1-9]/.test(req.url ?? '')) {
      refused.inc({ reason: 'origin' });
      return rejectUpgrade(socket, 403, 'Forbidden');
    }
    const ip = clientIp(req, trust);
    const held = perIp.get(ip) ?? 0;
    if (held >= config.WS_MAX_CONNECTIONS_PER_IP) {
      refused.inc({ reason: 'ip_limit' });
      return rejectUpgrade(socket, 429, 'Too Many Requests');
    }
    // Counted from now until the TCP connection ends, whatever happens to the handshake.
    perIp.set(ip, held + 1);
    socket.once('close', () => {
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n > 0) perIp.set(ip, n);
      else perIp.delete(ip);
    });

    let admission: Awaited<ReturnType<typeof admit>>;
    try {
      admission = await admit(req, embedOrigin);
    } catch (err) {
      log.warn({ err }, 'could not check access to a poll');
      admission = refusalOf('UNAVAILABLE');
    }
    if (closing) return rejectUpgrade(socket, 503, 'Service Unavailable');
    if ('status' in admission) {
      refused.inc({ reason: 'origin' });
      return rejectUpgrade(socket, admission.status, 'Forbidden');
    }
    // Close codes exist only on an open WebSocket: refusals complete the upgrade, then close at once.
    wss.handleUpgrade(req, socket, head, (ws) => {
      if ('code' in admission) {
        refused.inc({ reason: String(admission.code) });
        ws.on('error', () => {});
        ws.close(admission.code, admission.reason);
        return;
      }
      watch(ws, admission);
    });
  }

  function watch(
    ws: WebSocket,
    { pollId, viewer, expiresAt, waitHidden, withheld }: { pollId: number; viewer: Viewer; expiresAt?: number; waitHidden: boolean; withheld: boolean },
  ): void {
    // A random phase spreads the pings of a crowd that connected at once over the whole interval.
    const pingedAt = Date.now() - Math.random() * config.WS_PING_INTERVAL_MS;
    const conn: Connection = { ws, pollId, viewer, waitHidden, sent: null, sentAt: 0, skips: 0, alive: true, pingedAt };
    connections.add(conn);
    if (withheld) withhold(conn);
    ws.on('pong', () => (conn.alive = true));
    ws.on('error', () => {});
    // A signed-in watch lasts as long as its token: the client reconnects with a fresh one.
    const expiresIn = expiresAt === undefined ? Infinity : expiresAt - Date.now();
    const expiry = expiresIn < MAX_TIMER_MS ? setTimeout(() => ws.close(CLOSE_CODE.INVALID_TOKEN, 'INVALID_TOKEN'), Math.max(0, expiresIn)) : null;
    ws.on('close', () => {
      if (expiry) clearTimeout(expiry);
      connections.delete(conn);
      feeds.unwatch(pollId, conn);
    });
    feeds.watch(pollId, conn).catch((err) => {
      log.warn({ err }, 'could not load the results of a watched poll');
      ws.close(CLOSE_CODE.UNAVAILABLE, 'UNAVAILABLE');
    });
  }

  // Each connection is pinged once per interval, a slice at a time: pinging 15,000 sockets in one
  // go would stall every results push behind it.
  const heartbeat = setInterval(
    () => {
      const now = Date.now();
      for (const c of connections) {
        if (now - c.pingedAt < config.WS_PING_INTERVAL_MS) continue;
        if (!c.alive) {
          c.ws.terminate();
          continue;
        }
        c.alive = false;
        c.pingedAt = now;
        c.ws.ping();
      }
    },
    Math.max(20, config.WS_PING_INTERVAL_MS / 30),
  );
  heartbeat.unref();

  const server = http.createServer(
    createOpsHandler(metrics, async () => {
      await pingDatabase(db);
      return subscriber.status === 'ready';
    }),
  );
  server.on('upgrade', (req, socket: Socket, head) => void onUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(port, resolve));
  const url = `http://localhost:${(server.address() as AddressInfo).port}`;

  return {
    server,
    url,
    subscriberName,
    async close() {
      closing = true;
      clearInterval(heartbeat);
      for (const c of connections) c.ws.close(1001, 'server shutting down');
      const deadline = Date.now() + SHUTDOWN_GRACE_MS;
      while (connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const c of connections) c.ws.terminate();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      feeds.close();
      subscriber.disconnect();
      await db.destroy();
    },
  };
}

function rejectUpgrade(socket: Socket, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** Express's reading of a trust-proxy setting, so both processes see the same client address. */
function compileTrust(setting: boolean | number | string): (addr: string, i: number) => boolean {
  if (setting === true) return () => true;
  if (setting === false) return () => false;
  if (typeof setting === 'number') return (_addr, i) => i < setting;
  return proxyaddr.compile(setting.split(',').map((s) => s.trim()));
}
