import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { runUntilSignal } from '../shared/lifecycle.js';
import { ensureBackingServices } from '../shared/startup.js';
import { redisTargetOf } from '../shared/redis.js';
import { startRealtime } from './gateway.js';

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL, 'realtime');
await ensureBackingServices('realtime', { databaseUrl: config.DATABASE_URL, redis: redisTargetOf(config) });
const gateway = await startRealtime(config, log);
log.info({ url: gateway.url }, `realtime gateway listening on ${gateway.url.replace('http', 'ws')}/ws`);
runUntilSignal(log, () => gateway.close());
