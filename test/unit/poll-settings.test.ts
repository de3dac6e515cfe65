import { describe, expect, it } from 'vitest';
import { checkOptionImages, imageSources, isImageAllowed, parseImageHosts } from '../../src/domain/poll-settings.js';

describe('OPTION_IMAGE_HOSTS', () => {
  it('parses *, none and host lists, and refuses what is not a host', () => {
    expect(parseImageHosts('*')).toEqual({ any: true });
    expect(parseImageHosts('none')).toEqual({ any: false, hosts: [] });
    expect(parseImageHosts('Images.Example.com, *.cdn.example.net')).toEqual({ any: false, hosts: ['images.example.com', '*.cdn.example.net'] });
    expect(parseImageHosts('https://images.example.com')).toBeNull();
    expect(parseImageHosts('images.example.com/path')).toBeNull();
  });

  it('allows an image only over https from a listed host or a subdomain of a wildcard', () => {
    const hosts = parseImageHosts('images.example.com,*.cdn.example.net')!;
    expect(isImageAllowed('https://images.example.com/a.png', hosts)).toBe(true);
    expect(isImageAllowed('https://IMAGES.example.com/a.png', hosts)).toBe(true);
    expect(isImageAllowed('http://images.example.com/a.png', hosts)).toBe(false);
    expect(isImageAllowed('https://images.example.com.evil.org/a.png', hosts)).toBe(false);
    expect(isImageAllowed('https://eu.cdn.example.net/a.png', hosts)).toBe(true);
    expect(isImageAllowed('https://cdn.example.net/a.png', hosts)).toBe(false);
    expect(isImageAllowed('https://evilcdn.example.net/a.png', hosts)).toBe(false);
    expect(isImageAllowed('https://tracker.example.org/pixel.png', hosts)).toBe(false);
    expect(isImageAllowed('https://tracker.example.org/pixel.png', { any: true })).toBe(true);
    expect(isImageAllowed('https://images.example.com/a.png', parseImageHosts('none')!)).toBe(false);
  });

  it('names the first option whose image is not allowed', () => {
    const hosts = parseImageHosts('images.example.com')!;
    expect(() => checkOptionImages([{ image_url: null }, { image_url: 'https://images.example.com/b.png' }], hosts)).not.toThrow();
    expect(() => checkOptionImages([{ image_url: null }, { image_url: 'https://tracker.example.org/p.png' }], hosts)).toThrow(
      expect.objectContaining({ code: 'VALIDATION_ERROR', details: { field: 'options.1.image_url' } }),
    );
  });

  it('gives the pages an img-src with exactly those hosts', () => {
    expect(imageSources({ any: true })).toEqual(['https:']);
    expect(imageSources(parseImageHosts('images.example.com,*.cdn.example.net')!)).toEqual(['https://images.example.com', 'https://*.cdn.example.net']);
    expect(imageSources(parseImageHosts('none')!)).toEqual([]);
  });
});
