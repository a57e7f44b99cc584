// Server-Sent Events with the caller's token. The browser's EventSource cannot send an
// Authorization header, so streams are read with fetch (@microsoft/fetch-event-source).

import { fetchEventSource } from '@microsoft/fetch-event-source'
import { ApiError, authHeaders, messageOf } from './api'

const RETRY_MS = 2000

export interface StreamHandlers {
  onEvent: (event: string, data: string) => void
  /** Called on every (re)connection: a consumer reloads what it may have missed. */
  onOpen?: () => void
  /** A refusal (4xx) ends the stream; connection losses are retried and reported here too. */
  onError?: (error: ApiError) => void
}

/**
 * Follow a stream until `signal` aborts. A lost connection is retried; so is a stream the server
 * closes (an API pod restarting), unless `reconnect` is false (a stream that ends by design).
 */
export function follow(
  path: string,
  signal: AbortSignal,
  handlers: StreamHandlers,
  { reconnect = true, retryMs = RETRY_MS }: { reconnect?: boolean; retryMs?: number } = {},
): void {
  void fetchEventSource(path, {
    signal,
    headers: { Accept: 'text/event-stream', ...authHeaders() },
    openWhenHidden: true,
    async onopen(response) {
      if (response.ok) {
        handlers.onOpen?.()
        return
      }
      let body: unknown = null
      try {
        body = await response.json()
      } catch {
        body = null
      }
      const { code, message } = messageOf(response.status, body)
      throw new ApiError(response.status, code, message)
    },
    onmessage(message) {
      handlers.onEvent(message.event || 'message', message.data)
    },
    onclose() {
      throw new StreamClosed() // handled by onerror: reconnect or stop
    },
    onerror(error: unknown) {
      if (error instanceof StreamClosed && !reconnect) throw error
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
        handlers.onError?.(error)
        throw error // a refusal does not heal by retrying
      }
      handlers.onError?.(new ApiError(0, 'stream_lost', 'The live connection was lost; reconnecting…'))
      return retryMs
    },
  }).catch(() => undefined)
}

class StreamClosed extends Error {}
