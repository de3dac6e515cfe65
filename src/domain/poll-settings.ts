import type { PollSettings, PollType } from '../db/schema.js';
import { validationError } from '../shared/errors.js';
import { normalizeOrigin } from './origins.js';

/** Fills in setting defaults and checks the rules that span fields. */
export function normalizeSettings(pollType: PollType, optionCount: number, given: Partial<PollSettings>): PollSettings {
  const s: PollSettings = {
    max_choices: given.max_choices ?? (pollType === 'MULTIPLE_CHOICE' ? optionCount : 1),
    require_authentication: given.require_authentication ?? false,
    show_results_before_close: given.show_results_before_close ?? true,
    rating_min: given.rating_min ?? 1,
    rating_max: given.rating_max ?? 5,
    captcha: given.captcha ?? 'flagged',
    require_view_token: given.require_view_token ?? false,
    embed_origins: embedOriginsOf(given.embed_origins ?? []),
  };
  if (pollType === 'SINGLE_CHOICE' && s.max_choices !== 1) throw validationError('A single-choice poll has max_choices 1', { field: 'settings.max_choices' });
  if (pollType === 'MULTIPLE_CHOICE' && s.max_choices > optionCount) {
    throw validationError('max_choices cannot exceed the number of options', { field: 'settings.max_choices' });
  }
  if (s.rating_min >= s.rating_max) throw validationError('rating_min must be below rating_max', { field: 'settings.rating_min' });
  return s;
}

/** Embed origins in their one written form (what browsers send), each once. */
export function embedOriginsOf(given: string[]): string[] {
  const out: string[] = [];
  given.forEach((raw, i) => {
    const origin = normalizeOrigin(raw);
    if (!origin) throw validationError('must be an origin: scheme://host[:port], no path', { field: `settings.embed_origins.${i}` });
    if (!out.includes(origin)) out.push(origin);
  });
  return out;
}

/** The options, the start and the end fit together. */
export function checkShape(pollType: PollType, optionCount: number, start: Date | null, end: Date | null): void {
  if (pollType !== 'RATING' && optionCount < 2) throw validationError('A poll needs at least two options', { field: 'options' });
  if (start && end && end <= start) throw validationError('end_time must be after start_time', { field: 'end_time' });
}

export function checkEndInFuture(end: Date | null, now = Date.now()): void {
  if (end && end.getTime() <= now) throw validationError('end_time must be in the future', { field: 'end_time' });
}

/**
 * The hosts option images may come from (OPTION_IMAGE_HOSTS): any https host, none, or a list
 * where `*.example.com` stands for the subdomains of example.com. A viewer's browser fetches an
 * option's image from its host, which so learns the viewer's address: an operator who wants
 * anonymous polls to stay anonymous lists only hosts they trust (their own CDN) or none.
 */
export type ImageHosts = { any: true } | { any: false; hosts: readonly string[] };

export function parseImageHosts(raw: string): ImageHosts | null {
  const value = raw.trim().toLowerCase();
  if (value === '*') return { any: true };
  if (value === 'none' || value === '') return { any: false, hosts: [] };
  const hosts = value.split(',').map((h) => h.trim());
  return hosts.every((h) => /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$/.test(h)) ? { any: false, hosts } : null;
}

/** Whether an option image URL is on an allowed host (always https when a list is set). */
export function isImageAllowed(url: string, allowed: ImageHosts): boolean {
  if (allowed.any) return true;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'https:') return false;
  const host = parsed.host.toLowerCase();
  return allowed.hosts.some((h) => (h.startsWith('*.') ? host.endsWith(h.slice(1)) && host.length > h.length - 1 : host === h));
}

/** Every option image on an allowed host; else VALIDATION_ERROR naming the first that is not. */
export function checkOptionImages(options: ReadonlyArray<{ image_url: string | null }>, allowed: ImageHosts): void {
  options.forEach((o, i) => {
    if (o.image_url !== null && !isImageAllowed(o.image_url, allowed)) {
      const hosts = allowed.any ? '' : allowed.hosts.length ? `: ${allowed.hosts.join(', ')}` : ': this service takes no option images';
      throw validationError(`Option images may come only from the hosts the operator allows${hosts}`, { field: `options.${i}.image_url` });
    }
  });
}

/** The CSP img-src sources that let the pages show exactly the allowed images. */
export function imageSources(allowed: ImageHosts): string[] {
  return allowed.any ? ['https:'] : allowed.hosts.map((h) => `https://${h}`);
}
