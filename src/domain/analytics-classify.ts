// Loaded only by the analytics worker: the country database is megabytes the API never needs.
// Country data: GeoLite2 by MaxMind (https://www.maxmind.com), CC BY-SA 4.0, shipped in geoip-country.
import geoip from 'geoip-country';
import { UAParser } from 'ua-parser-js';
import { isBot } from 'ua-parser-js/bot-detection';
import { Bots } from 'ua-parser-js/extensions';
import { UNKNOWN_COUNTRY, type DeviceClass } from './analytics.js';

/**
 * The device class of a User-Agent. Bots first (crawlers, fetchers, CLI tools, HTTP libraries,
 * headless browsers), then the parsed device type; a browser with no device type is a desktop.
 */
export function deviceClassOf(userAgent: string | null): DeviceClass {
  if (!userAgent) return 'other';
  const ua = new UAParser(userAgent, Bots).getResult();
  if (isBot(ua) || /headless/i.test(ua.browser.name ?? '')) return 'bot';
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
