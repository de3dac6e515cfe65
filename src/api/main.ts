import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { ensureBackingServices } from '../shared/startup.js';
import { redisTargetOf } from '../shared/redis.js';
import { runUntilSignal } from '../shared/lifecycle.js';
import { startApi } from './server.js';

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL, 'api');
await ensureBackingServices('api', { databaseUrl: config.DATABASE_URL, redis: redisTargetOf(config) });
const api = await startApi(config, log);
log.info({ url: api.url }, `API listening on ${api.url}`);
runUntilSignal(log, () => api.close());
