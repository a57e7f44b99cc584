// Server-Sent Events with the caller's token. The browser's EventSource cannot send an
// Authorization header, so streams are read with fetch (@microsoft/fetch-event-source).

import { fetchEventSource } from '@microsoft/fetch-event-source'
import { ApiError, authHeaders, messageOf } from './api'

const RETRY_MS = 2000

export interface StreamHandlers {
  onEvent: (event: string, data: string) => void
  onOpen?: () => void
  /** A refusal (4xx) ends the stream; connection losses are retried and reported here too. */
  onError?: (error: ApiError) => void
}

/** Follow a stream until `signal` aborts; reconnects after a lost connection. */
export function follow(path: string, signal: AbortSignal, handlers: StreamHandlers): void {
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
      // the server ended the stream (a job's stream ends with the job): do not reconnect
      throw new StreamClosed()
    },
    onerror(error: unknown) {
      if (error instanceof StreamClosed) throw error
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
        handlers.onError?.(error)
        throw error // a refusal does not heal by retrying
      }
      handlers.onError?.(
        new ApiError(0, 'stream_lost', 'The live connection was lost; reconnecting…'),
      )
      return RETRY_MS
    },
  }).catch(() => undefined)
}

class StreamClosed extends Error {}
