import { parseArgs } from 'node:util';
import { loadConfig } from '../shared/config.js';
import { signDevToken } from '../shared/auth.js';

/** `npm run token -- --sub 1 [--org 3] [--admin] [--ttl 3600]`: prints a bearer token signed with JWT_SECRET. */
const usage = 'usage: npm run token -- --sub USER_ID [--org ORG_ID] [--admin] [--ttl SECONDS]';
const options = {
  sub: { type: 'string' },
  org: { type: 'string' },
  admin: { type: 'boolean', default: false },
  ttl: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
const parsed = (() => {
  try {
    return parseArgs({ options });
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
})();
const { values } = parsed;
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const positive = (name: string, raw: string | undefined) => {
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,15}$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    console.error(`--${name} must be a positive integer\n${usage}`);
    process.exit(2);
  }
  return Number(raw);
};
const sub = positive('sub', values.sub);
if (sub === undefined) {
  console.error(usage);
  process.exit(2);
}
const config = loadConfig();
const { token } = await signDevToken(config.JWT_SECRET, {
  sub,
  org: positive('org', values.org) ?? null,
  admin: values.admin,
  ttlSeconds: positive('ttl', values.ttl),
});
console.log(token);
