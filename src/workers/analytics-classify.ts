// Loaded only by the analytics worker, and only when it starts (the country database is read at import: megabytes the API never needs).
// Country data: GeoLite2 by MaxMind (https://www.maxmind.com), CC BY-SA 4.0, shipped in geoip-country.
import geoip from 'geoip-country';
// ua-parser-js stays on v1 (MIT): v2 is AGPL-3.0, which this MIT service cannot ship.
import { UAParser } from 'ua-parser-js';
import { isbot } from 'isbot';
import { UNKNOWN_COUNTRY, type DeviceClass } from '../domain/analytics.js';

/**
 * The device class of a User-Agent. Bots first (crawlers, fetchers, CLI tools, HTTP libraries,
 * headless browsers), then the parsed device type; a browser with no device type is a desktop.
 */
export function deviceClassOf(userAgent: string | null): DeviceClass {
  if (!userAgent) return 'other';
  if (isbot(userAgent) || /headless/i.test(userAgent)) return 'bot';
  const ua = new UAParser(userAgent).getResult();
  if (ua.device.type === 'mobile') return 'mobile';
  if (ua.device.type === 'tablet') return 'tablet';
  if (ua.device.type === undefined && ua.browser.name) return 'desktop';
  return 'other';
}

/** The country of an address from the offline database; "ZZ" for private, loopback and unlisted addresses. */
export function countryOfIp(ip: string | null): string {
  if (!ip) return UNKNOWN_COUNTRY;
  return geoip.lookup(ip)?.country || UNKNOWN_COUNTRY;
}
