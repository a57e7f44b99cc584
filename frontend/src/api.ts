// The service's HTTP API, typed. Every failure becomes an ApiError with a readable message.

import type { components } from './api-schema'

// The types come from the service's OpenAPI schema (frontend/src/api-schema.ts, made by scripts/api-types).
type Schemas = components['schemas']

export type JobStatus = Schemas['JobStatus']
export const JOB_STATUSES: JobStatus[] = ['waiting', 'queued', 'running', 'succeeded', 'skipped', 'failed', 'cancelled']
export type Job = Schemas['Job']
export type JobPage = Schemas['JobPage']
export type MethodInfo = Schemas['MethodInfo']
export type SiteConfig = Schemas['SiteConfig']
export type Me = Schemas['Me']
export type StorageEntry = Schemas['StorageEntry']
export type StorageListing = Schemas['StorageListing']
export type StageItem = Schemas['JobItem']
export type ItemOutcome = Schemas['ItemOutcome']
export type JobsAccepted = Schemas['JobsAccepted']
export type CreatedFile = Schemas['CreatedFile']
export type DidFound = Schemas['DidFound']
export type DidPage = Schemas['DidPage']
export type DidInfo = Schemas['DidInfo']
export type Usage = Schemas['Usage']
export type Held = Schemas['Held']

/** A refused or failed call: `code` is the service's machine-readable code. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string

  constructor(status: number, code: string, message: string) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

const TOKEN_KEY = 'skao-staging-token'

/** The bearer token (OIDC mode), kept for this browser tab only. */
export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (value: string | null): void => {
    if (value) sessionStorage.setItem(TOKEN_KEY, value)
    else sessionStorage.removeItem(TOKEN_KEY)
  },
}

export function authHeaders(): Record<string, string> {
  const bearer = token.get()
  return bearer ? { Authorization: `Bearer ${bearer}` } : {}
}

/** A message for people from an error answer's body, whatever its shape. */
export function messageOf(status: number, body: unknown): { code: string; message: string } {
  if (body && typeof body === 'object' && 'detail' in body) {
    const { detail, code } = body as { detail: unknown; code?: unknown }
    const text = typeof detail === 'string' ? detail : 'the request was not understood'
    return { code: typeof code === 'string' ? code : `http_${status}`, message: capitalize(text) }
  }
  if (status === 502 || status === 503 || status === 504) {
    return { code: `http_${status}`, message: 'The staging service is unavailable; try again shortly.' }
  }
  return { code: `http_${status}`, message: `The service answered with an unexpected error (HTTP ${status}).` }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders() }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  let response: Response
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch {
    throw new ApiError(0, 'network_error', 'The staging service cannot be reached. Check your connection.')
  }
  const text = await response.text()
  let parsed: unknown = null
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {
    parsed = null
  }
  if (!response.ok) {
    const { code, message } = messageOf(response.status, parsed)
    throw new ApiError(response.status, code, message)
  }
  return parsed as T
}

function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') search.set(key, String(value))
  }
  const text = search.toString()
  return text ? `?${text}` : ''
}

export const api = {
  config: () => request<SiteConfig>('GET', '/api/v1/config'),
  me: () => request<Me>('GET', '/api/v1/me'),
  browse: (path: string) => request<StorageListing>('GET', `/api/v1/storage${query({ path })}`),
  jobs: (filters: { username?: string | null; status?: string; method?: string; limit?: number; offset?: number }) =>
    request<JobPage>('GET', `/api/v1/jobs${query({ ...filters })}`),
  submit: (username: string | null, items: StageItem[], lifetime: string | null = null) =>
    request<JobsAccepted>('POST', '/api/v1/jobs', { username: username || null, items, ...(lifetime ? { lifetime } : {}) }),
  cancel: (jobId: number) => request<Job>('DELETE', `/api/v1/jobs/${jobId}`),
  retry: (jobId: number) => request<Job>('POST', `/api/v1/jobs/${jobId}/retry`),
  release: (jobId: number) => request<Job>('DELETE', `/api/v1/jobs/${jobId}/data`),
  extend: (jobId: number, lifetime: string) => request<Job>('PATCH', `/api/v1/jobs/${jobId}`, { lifetime }),
  usage: (username: string | null) => request<Usage>('GET', `/api/v1/usage${query({ username })}`),
  usageByUser: () => request<Usage[]>('GET', '/api/v1/usage/users'),
  createFile: (path: string, content: { size: number } | { text: string }) =>
    request<CreatedFile>('POST', '/api/v1/files', { path, ...content }),
  searchDids: (scope: string, name: string) =>
    request<DidPage>('GET', `/api/v1/dids${query({ scope, name, limit: 20 })}`),
  describeDid: (scope: string, name: string) =>
    request<DidInfo>('GET', `/api/v1/dids/${encodeURIComponent(scope)}/${name.split('/').map(encodeURIComponent).join('/')}`),
  downloadUrl: (path: string, username: string | null) =>
    `/api/v1/download${query({ path, username })}`,
}
