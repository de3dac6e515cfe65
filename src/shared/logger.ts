import { pino, type Logger } from 'pino';

/** The process logger: JSON lines, never tokens or credentials. */
export function createLogger(level: string, role: string): Logger {
  return pino({
    level,
    base: { role, pid: process.pid },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.password'], remove: true },
  });
}
export type { Logger };
