/**
 * Calls to the staging service, through this Jupyter server's extension (/skao-staging/api/...).
 * ServerConnection adds the XSRF token and the server's own sign-in; no staging token is in the browser.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IMethod {
  name: string;
  description: string;
  accepts_directories: boolean;
}

export interface ISiteConfig {
  methods: IMethod[];
  dids: boolean;
  rucio_rse: string | null;
  lifetimes: { default_seconds: number; max_seconds: number; unlimited_for_everyone: boolean };
  jupyter_workdir?: string | null;
}

export interface IMe {
  username: string | null;
  is_admin: boolean;
}

export interface IEntry {
  name: string;
  path: string;
  type: 'file' | 'folder';
  size: number | null;
}

export interface IListing {
  path: string;
  parent: string | null;
  entries: IEntry[];
  truncated: boolean;
}

export interface IDidFound {
  did: string;
  type: string;
}

export interface IJob {
  job_id: number;
  request_id: string;
  status: string;
  method: string | null;
  local_path_on_storage: string | null;
  did: string | null;
  relative_path: string | null;
  bytes: number | null;
  bytes_done: number;
  error_code: string | null;
  error_reason: string | null;
  expires_at: string | null;
  released_at: string | null;
}

export interface IItemOutcome {
  index: number;
  job: IJob;
  error: { detail: string; code: string } | null;
}

export interface IAccepted {
  request_id: string;
  items: IItemOutcome[];
}

export const FINAL = new Set(['succeeded', 'skipped', 'failed', 'cancelled']);

/** A refusal of the service (or of this server's extension): its message and machine-readable code. */
export class StagingApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string
  ) {
    super(detail);
  }
}

function settings(): ServerConnection.ISettings {
  return ServerConnection.makeSettings();
}

export function apiUrl(path: string): string {
  return URLExt.join(settings().baseUrl, 'skao-staging', 'api', path);
}

/**
 * The URL of the service's event stream. EventSource cannot send the X-XSRFToken header, and
 * JupyterHub's single-user servers refuse cookie-authenticated API reads without it, so the
 * token goes in the query (``_xsrf``), as Jupyter Server accepts it.
 */
export function eventsUrl(): string {
  const xsrf = document.cookie.match('\\b_xsrf=([^;]*)\\b')?.[1];
  return xsrf ? `${apiUrl('events')}?${query({ _xsrf: xsrf })}` : apiUrl('events');
}

export async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await ServerConnection.makeRequest(apiUrl(path), init, settings());
  const text = await response.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { detail: text, code: 'http_error' };
  }
  if (!response.ok) {
    throw new StagingApiError(response.status, body?.code ?? 'http_error', body?.detail ?? response.statusText);
  }
  return body as T;
}

export function query(params: Record<string, string | number>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    search.set(name, String(value));
  }
  return search.toString();
}

export const api = {
  config: () => call<ISiteConfig>('config'),
  me: () => call<IMe>('me'),
  storage: (path: string) => call<IListing>(`storage?${query({ path })}`),
  searchDids: (scope: string, name: string) =>
    call<{ dids: IDidFound[] }>(`dids?${query({ scope, name, limit: 50 })}`),
  stage: (body: object) => call<IAccepted>('jobs', { method: 'POST', body: JSON.stringify(body) }),
  cancel: (jobId: number) => call<IJob>(`jobs/${jobId}`, { method: 'DELETE' }),
  retry: (jobId: number) => call<IJob>(`jobs/${jobId}/retry`, { method: 'POST' }),
  release: (jobId: number) => call<IJob>(`jobs/${jobId}/data`, { method: 'DELETE' }),
  job: (jobId: number) => call<IJob>(`jobs/${jobId}`)
};
