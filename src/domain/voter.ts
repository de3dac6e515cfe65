import { hash } from 'node:crypto';
import { addressGroupsOf } from './ip-prefix.js';

/** Who votes, as the dedup claim, the per-address limits and the partitioning see them. */
export interface VoterIdentity {
  /** The unique key of the voter's ballot in the poll (`u:<id>` or `f:<hash>`). */
  voterKey: string;
  /** What places the voter in a partition: the user id, or the widest watched address prefix. */
  routingKey: string;
  /** Key of the per-address limit: an IPv4 address or an IPv6 /64. */
  limitKey: string;
  /** Address prefixes watched for velocity, narrowest first. */
  prefixes: string[];
}

/** The anonymous voter's identity: a hash of poll, address, browser and client fingerprint. */
export function anonymousVoterKey(pollId: number, ip: string, userAgent: string, fingerprint = ''): string {
  return `f:${hash('sha256', `${pollId}\n${ip}\n${userAgent}\n${fingerprint}`, 'base64url').slice(0, 32)}`;
}

/** The voter of a request: a signed-in user by id; an anonymous one by address, browser and fingerprint. */
export function voterIdentityOf(v: { pollId: number; userId: number | null; ip: string; userAgent: string; fingerprint?: string }): VoterIdentity {
  const groups = addressGroupsOf(v.ip);
  const widest = groups.prefixes.at(-1) ?? groups.limitKey;
  if (v.userId !== null) return { voterKey: `u:${v.userId}`, routingKey: `u:${v.userId}`, limitKey: groups.limitKey, prefixes: groups.prefixes };
  return { voterKey: anonymousVoterKey(v.pollId, v.ip, v.userAgent, v.fingerprint), routingKey: widest, limitKey: groups.limitKey, prefixes: groups.prefixes };
}
