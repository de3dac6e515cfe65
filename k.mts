import { startRedisCluster } from './bench/redis-cluster.ts';
import { startApi } from './src/api/server.ts';
import { loadConfig } from './src/shared/config.ts';
import { createLogger } from './src/shared/logger.ts';
import { createDatabaseIfMissing, migrateToLatest } from './src/db/migrate.ts';
import { createDb } from './src/db/client.ts';
import { SignJWT } from 'jose';
const c = await startRedisCluster({ basePort: 23600 });
const url = 'postgres://postgres@127.0.0.1:5432/k_fail'; await createDatabaseIfMissing(url); const d = createDb(url, 1); await migrateToLatest(d); await d.destroy();
const config = loadConfig({ DATABASE_URL: url, REDIS_CLUSTER_NODES: c.seeds, REDIS_NAMESPACE: 'k' + Date.now(), LOG_LEVEL: 'debug', TRUST_PROXY: 'loopback', JWT_SECRET: 'x'.repeat(20), FRAUD_DEFENCES: 'off', VOTE_PARTITIONS: '12', REDIS_WAIT_REPLICAS: process.argv[2] ?? '1' });
const api = await startApi(config, createLogger('warn', 'k'), 0);
const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('1').sign(new TextEncoder().encode('x'.repeat(20)));
const p = await (await fetch(api.url + '/api/v1/polls', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token }, body: JSON.stringify({ question: 'q', poll_type: 'SINGLE_CHOICE', options: [{ text: 'a' }, { text: 'b' }], status: 'ACTIVE' }) })).json();
let n = 0;
const probe = async () => { const st: Record<string, number> = {}; const bodies = new Set<string>(); const t = Date.now(); await Promise.all(Array.from({ length: 24 }, async () => { const i = n++; const r = await fetch(`${api.url}/api/v1/polls/${p.poll_id}/votes`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.${i >> 8}.${i & 255}.1` }, body: JSON.stringify({ options: [p.options[0].option_id] }) }); st[r.status] = (st[r.status] ?? 0) + 1; if (r.status !== 202) bodies.add((await r.text()).slice(0, 90)); })); return JSON.stringify(st) + ' ' + (Date.now() - t) + 'ms ' + [...bodies].join(' | '); };
console.log('before', await probe());
const [v] = c.masterPorts(); c.kill(v);
for (let i = 0; i < 12; i++) { await new Promise(res => setTimeout(res, 1000)); console.log(i, await probe()); }
await api.close(); await c.stop(); process.exit(0);
