import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { runUntilSignal } from '../shared/lifecycle.js';
import { ensureBackingServices } from '../shared/startup.js';
import { redisTargetOf } from '../shared/redis.js';
import { startWorkers } from './runner.js';

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL, 'workers');
await ensureBackingServices('workers', { databaseUrl: config.DATABASE_URL, redis: redisTargetOf(config) });
const workers = await startWorkers(config, log);
log.info({ url: workers.url }, `workers running; metrics on ${workers.url}/metrics`);
runUntilSignal(log, () => workers.close());
