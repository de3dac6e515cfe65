import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true });
const readme = readFileSync('README.md', 'utf8');
const prometheus = parse(readFileSync('deploy/prometheus.yml', 'utf8'));

describe('docker-compose.yml', () => {
  it('has every service the README names', () => {
    const start = readme.indexOf('The compose file runs:');
    const paragraph = readme.slice(start, readme.indexOf('.', start));
    const named = [...paragraph.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]);
    expect(named.length).toBeGreaterThanOrEqual(6);
    for (const service of named) expect(Object.keys(compose.services)).toContain(service);
  });
  it('runs Redis as BullMQ wants it in production', () => {
    const command = compose.services.redis.command.join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--appendfsync everysec/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
  });
  it('starts every role from the built image after migrations', () => {
    for (const role of ['api', 'worker', 'realtime']) {
      const svc = compose.services[role];
      expect(svc.command.join(' ')).toMatch(/^node dist\/src\/.+\/main\.js$/);
      expect(svc.depends_on.migrate.condition).toBe('service_completed_successfully');
    }
  });
});

describe('unreachable backing services', () => {
  it.each(['src/api/main.ts', 'src/workers/main.ts'])('%s says which server is missing in one line, without a stack trace', async (entry) => {
    const { spawnSync } = await import('node:child_process');
    const run = spawnSync(process.execPath, ['--import', 'tsx', entry], {
      env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:1', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/polls', LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/cannot reach PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/polls .*Start PostgreSQL/);
    expect(run.stderr).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1 .*ECONNREFUSED.*Start Redis/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('an unreachable Redis Cluster', () => {
  it('is named with its seeds in one line', async () => {
    const { spawnSync } = await import('node:child_process');
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/workers/main.ts'], {
      env: { ...process.env, REDIS_CLUSTER_NODES: '127.0.0.1:1,127.0.0.1:2', LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/cannot reach the Redis Cluster at 127\.0\.0\.1:1,127\.0\.0\.1:2 .*REDIS_CLUSTER_NODES/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('Prometheus', () => {
  const roles = [
    { service: 'api', portEnv: 'PORT' },
    { service: 'worker', portEnv: 'WORKER_METRICS_PORT' },
    { service: 'realtime', portEnv: 'REALTIME_PORT' },
  ];
  it('runs with deploy/prometheus.yml mounted as its configuration', () => {
    const svc = compose.services.prometheus;
    expect(svc.image).toMatch(/^prom\/prometheus/);
    expect(svc.volumes).toContain('./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });
  it('finds every replica of every role by DNS and scrapes the port the role listens on', () => {
    for (const { service, portEnv } of roles) {
      const job = prometheus.scrape_configs.find((j: any) => j.dns_sd_configs?.some((d: any) => d.names.includes(service)));
      expect(job, service).toBeDefined();
      const sd = job.dns_sd_configs.find((d: any) => d.names.includes(service));
      expect(sd.type).toBe('A');
      expect(String(sd.port)).toBe(compose.services[service].environment[portEnv]);
      expect(job.metrics_path ?? '/metrics').toBe('/metrics');
    }
  });
  it('leaves the scalable roles without fixed host ports, and gives them time to drain', () => {
    for (const service of ['worker', 'realtime']) {
      for (const port of compose.services[service].ports ?? []) {
        if (typeof port === 'object') expect(port.published, service).toBeUndefined();
        else expect(String(port), service).not.toMatch(/:/);
      }
    }
    for (const { service } of roles) expect(compose.services[service].stop_grace_period).toBe('30s');
  });
});
