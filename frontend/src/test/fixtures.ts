import { vi } from 'vitest'
import type { Job, Me, SiteConfig } from '../api'

export const config: SiteConfig = {
  version: '0.1.0',
  methods: [
    { name: 'local_copy', aliases: [], description: 'Copy into your user area.', accepts_directories: true },
    { name: 'direct_download', aliases: ['direct_dowload'], description: 'Download.', accepts_directories: false },
  ],
  storage_roots: ['/data/archive'],
  unavailable_methods: { jupyter_copy: 'STAGING_JUPYTERHUB_URL is not set' },
  auth_mode: 'none',
  file_tool_enabled: true,
  file_tool_max_bytes: 1024 * 1024,
  error_codes: { source_not_found: 'The source does not exist.' },
  dids: false,
  rucio_rse: null,
  lifetimes: { default_seconds: 14 * 86400, max_seconds: 90 * 86400, unlimited_for_everyone: false },
  quota_held_bytes: null,
}

export const developer: Me = { username: null, authenticated: false, is_admin: false, admin_tools: true, groups: [] }
export const signedIn: Me = { username: 'ann', authenticated: true, is_admin: false, admin_tools: false, groups: [] }

export function job(overrides: Partial<Job> = {}): Job {
  return {
    job_id: 1,
    request_id: 'r1',
    status: 'queued',
    method: 'local_copy',
    username: 'ann',
    local_path_on_storage: '/data/archive/a.fits',
    did: null,
    relative_path: 'a.fits',
    destination: null,
    bytes: null,
    bytes_done: 0,
    files: null,
    checksum: null,
    read_only: null,
    note: null,
    attempts: 0,
    lifetime: null,
    expires_at: null,
    released_at: null,
    release_reason: null,
    release_note: null,
    worker_id: null,
    error_code: null,
    error_reason: null,
    created_at: '2026-11-23T10:00:00.000Z',
    started_at: null,
    finished_at: null,
    ...overrides,
  }
}

/** Stub fetch with answers by "METHOD path" (path without the query); records the calls. */
type Answer = { status?: number; body: unknown }

/** Answers by "METHOD /path"; an answer may depend on the whole URL (its query). */
export function stubFetch(answers: Record<string, Answer | ((url: URL) => Answer)>) {
  const calls: { method: string; url: string; body: unknown }[] = []
  const fetchStub = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input)
    const method = init?.method ?? 'GET'
    calls.push({ method, url, body: init?.body ? JSON.parse(String(init.body)) : undefined })
    const found = answers[`${method} ${url.split('?')[0]}`]
    const answer = typeof found === 'function' ? found(new URL(url, 'http://localhost')) : found
    if (!answer) return new Response(JSON.stringify({ detail: 'not stubbed', code: 'x' }), { status: 500 })
    return new Response(JSON.stringify(answer.body), {
      status: answer.status ?? 200,
      headers: { 'Content-Type': 'application/json' },
    })
  })
  vi.stubGlobal('fetch', fetchStub)
  return calls
}
