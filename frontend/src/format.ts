// Numbers and times for people.

import type { Me, SiteConfig } from './api'

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '—'
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit += 1
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`
}

export function formatRate(bytesPerSecond: number | null): string {
  return bytesPerSecond === null ? '—' : `${formatBytes(Math.round(bytesPerSecond))}/s`
}

export function parseTime(iso: string | null): number | null {
  if (!iso) return null
  const time = Date.parse(iso)
  return Number.isNaN(time) ? null : time
}

/** Shorter transfers are dominated by set-up time: their rate would mislead. */
export const MIN_RATE_SECONDS = 1

/** Bytes per second between a job's start and its end (or now, while it runs). */
export function throughput(
  bytesDone: number,
  startedAt: string | null,
  finishedAt: string | null,
  now: number,
): number | null {
  const start = parseTime(startedAt)
  if (start === null || bytesDone <= 0) return null
  const end = parseTime(finishedAt) ?? now
  const seconds = (end - start) / 1000
  return seconds >= MIN_RATE_SECONDS ? bytesDone / seconds : null
}

/** A moment in full, for hovering: date, time with milliseconds, and time zone, in the reader's locale. */
export function formatFullTime(iso: string | null): string {
  const time = parseTime(iso)
  if (time === null) return ''
  return new Date(time).toLocaleString(undefined, {
    year: 'numeric',
    month: 'long',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    fractionalSecondDigits: 3,
    timeZoneName: 'short',
  })
}

/** A path below one of the storage roots, relative to it (the longest root that holds it); others unchanged. */
export function relativeToRoot(path: string, roots: readonly string[]): string {
  const holding = roots
    .map((root) => root.replace(/\/+$/, ''))
    .filter((root) => root && path.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length)[0]
  return holding ? path.slice(holding.length + 1) : path
}

/** The reader's locale decides the clock (24-hour where it uses it); one format for every view. */
export function formatTime(iso: string | null): string {
  const time = parseTime(iso)
  if (time === null) return '—'
  return new Date(time).toLocaleString(undefined, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  })
}

/** The last part of a path, for a default destination name. */
export function baseName(path: string): string {
  const parts = path.split('/').filter(Boolean)
  return parts.length ? parts[parts.length - 1] : ''
}

/** A lifetime in seconds as words: "14 days", "12 hours", "until released" (0). */
export function formatLifetime(seconds: number): string {
  if (seconds === 0) return 'until released'
  const units: [number, string][] = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ]
  for (const [size, name] of units) {
    if (seconds >= size && seconds % size === 0) {
      const count = seconds / size
      return `${count} ${name}${count === 1 ? '' : 's'}`
    }
  }
  return `${seconds} seconds`
}

/** The lifetimes a person picks from: a day, a week, a month, the site's longest, and "until released"
 * where they may ask for it (admins, development mode, or a site that allows it to everyone). */
export function lifetimeChoices(rules: SiteConfig['lifetimes'], me: Me): number[] {
  const unlimited = rules.unlimited_for_everyone || me.is_admin || !me.authenticated
  const choices = [86400, 7 * 86400, 30 * 86400].filter((seconds) => seconds < rules.max_seconds)
  return [...choices, rules.max_seconds, ...(unlimited ? [0] : [])]
}
