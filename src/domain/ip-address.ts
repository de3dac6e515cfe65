// A dotted quad already in its one written form: no leading zeros, each part at most 255.
const CANONICAL_V4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const V4_PART = /^\d{1,3}$/;

/**
 * The one written form of an IP address, or null when `raw` is not one: a dotted quad without
 * leading zeros for IPv4 and for IPv4-mapped IPv6 (`::FFFF:10.1.1.1`, `::ffff:a01:101` and
 * `0:0:0:0:0:ffff:0a01:0101` are all `10.1.1.1`), RFC 5952 for the rest of IPv6 (lower case,
 * no leading zeros, the longest run of zero groups compressed), without a zone (`%eth0` names
 * one of our interfaces, not the client). Zero-padded IPv4 parts are decimal, as PostgreSQL's
 * inet reads them. Voters are told apart by this string, so every form of one address must
 * give the same one.
 */
export function canonicalIp(raw: string): string | null {
  // The common cases, without a parse: this runs for every vote.
  if (CANONICAL_V4.test(raw)) return raw;
  if (raw.startsWith('::ffff:') && CANONICAL_V4.test(raw.slice(7))) return raw.slice(7);
  const zone = raw.indexOf('%');
  const ip = zone < 0 ? raw : raw.slice(0, zone);
  if (ip.includes(':')) return canonicalV6(ip);
  const v4 = parseV4(ip);
  return v4 ? v4.join('.') : null;
}

/** Four decimal parts of at most three digits (zero-padding allowed), each at most 255. */
function parseV4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!V4_PART.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

function canonicalV6(s: string): string | null {
  const groups = parseV6(s);
  if (!groups) return null;
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`;
  }
  // RFC 5952 4.2: the longest run of two or more zero groups (the first of equals) becomes "::".
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestAt) {
      out += '::';
      i += bestLen - 1;
    } else out += (out === '' || out.endsWith(':') ? '' : ':') + hex4(groups[i]);
  }
  return out;
}

const HEX = '0123456789abcdef';
/** A group in hex without leading zeros (faster than toString(16) on the hot path). */
function hex4(g: number): string {
  if (g < 0x10) return HEX[g];
  if (g < 0x100) return HEX[g >> 4] + HEX[g & 15];
  if (g < 0x1000) return HEX[g >> 8] + HEX[(g >> 4) & 15] + HEX[g & 15];
  return HEX[g >> 12] + HEX[(g >> 8) & 15] + HEX[(g >> 4) & 15] + HEX[g & 15];
}

/** Eight 16-bit groups, from hex groups with at most one "::" and optionally a dotted quad last; one pass, no splitting. */
function parseV6(s: string): number[] | null {
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  const n = s.length;
  if (s.charCodeAt(0) === 58 /* : */) {
    if (s.charCodeAt(1) !== 58) return null;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    const start = i;
    let value = 0;
    while (i < n && i - start < 5) {
      const d = hexDigit(s.charCodeAt(i));
      if (d < 0) break;
      value = value * 16 + d;
      i++;
    }
    if (i < n && s.charCodeAt(i) === 46 /* . */) {
      const v4 = groups.length <= 6 ? parseV4(s.slice(start)) : null;
      if (!v4) return null;
      groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      i = n;
      break;
    }
    if (i === start || i - start > 4 || groups.length === 8) return null;
    groups.push(value);
    if (i === n) break;
    if (s.charCodeAt(i) !== 58) return null;
    if (s.charCodeAt(i + 1) === 58) {
      if (gap >= 0) return null;
      gap = groups.length;
      i += 2;
    } else {
      i++;
      // A single ":" must be followed by another group.
      if (i === n) return null;
    }
  }
  if (gap < 0) return groups.length === 8 ? groups : null;
  // "::" stands for at least one zero group.
  if (groups.length > 7) return null;
  const out = groups.slice(0, gap);
  for (let k = groups.length; k < 8; k++) out.push(0);
  for (let k = gap; k < groups.length; k++) out.push(groups[k]);
  return out;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
