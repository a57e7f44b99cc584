import { describe, expect, it } from 'vitest';

import type { ISiteConfig } from '../src/api';
import { baseName, destinationFor, lifetimeChoices, percent } from '../src/helpers';

const DAY = 86400;

function site(max: number, fallback: number, unlimited = false): ISiteConfig {
  return {
    methods: [],
    dids: false,
    rucio_rse: null,
    lifetimes: { default_seconds: fallback, max_seconds: max, unlimited_for_everyone: unlimited }
  };
}

describe('baseName', () => {
  it('names storage paths by their last part and DIDs by their name', () => {
    expect(baseName('obs/run1/')).toBe('run1');
    expect(baseName('obs/notes.txt')).toBe('notes.txt');
    expect(baseName('sky:obs-42')).toBe('obs-42');
    expect(baseName('sky:a:b')).toBe('a:b');
  });
});

describe('destinationFor', () => {
  it('is the file browser folder without a workdir', () => {
    expect(destinationFor('incoming/run', null)).toBe('incoming/run');
    expect(destinationFor('', '')).toBe('');
  });
  it('is relative to the workdir when the browser is inside it', () => {
    expect(destinationFor('staged/run', 'staged')).toBe('run');
    expect(destinationFor('staged', 'staged')).toBe('');
    expect(destinationFor('elsewhere', 'staged')).toBe('elsewhere');
    expect(destinationFor('stagedx/a', 'staged')).toBe('stagedx/a');
  });
});

describe('lifetimeChoices', () => {
  it('offers what the site allows, its default included, and "until released" to admins only', () => {
    const config = site(30 * DAY, 2 * 3600);
    const labels = lifetimeChoices(config, { username: 'a', is_admin: false }).map(choice => choice.label);
    expect(labels).toEqual(['2 hours', '1 day', '7 days', '14 days', '30 days']);
    const admin = lifetimeChoices(config, { username: 'b', is_admin: true });
    expect(admin[admin.length - 1]).toEqual({ label: 'until released', seconds: 0 });
    expect(lifetimeChoices(site(90 * DAY, 14 * DAY, true), null).pop()?.seconds).toBe(0);
  });
});

describe('percent', () => {
  it('is done over total, and full once staged', () => {
    const job = { status: 'running', bytes: 200, bytes_done: 50 } as never;
    expect(percent(job)).toBe(25);
    expect(percent({ status: 'skipped', bytes: null, bytes_done: 0 } as never)).toBe(100);
    expect(percent({ status: 'queued', bytes: null, bytes_done: 0 } as never)).toBe(0);
  });
});
