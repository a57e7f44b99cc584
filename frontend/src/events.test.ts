import { waitFor } from '@testing-library/react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { follow } from './events'

afterEach(() => vi.unstubAllGlobals())

function streamOf(text: string): Response {
  return new Response(text, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
}

describe('follow', () => {
  it('delivers events and reconnects when the server closes the stream', async () => {
    const fetchStub = vi.fn(async () => streamOf('event: job\ndata: {"job_id": 1}\n\n'))
    vi.stubGlobal('fetch', fetchStub)
    const controller = new AbortController()
    const events: string[] = []
    const onOpen = vi.fn()
    follow('/api/v1/events', controller.signal, { onEvent: (_, data) => events.push(data), onOpen }, { retryMs: 10 })
    await waitFor(() => expect(onOpen.mock.calls.length).toBeGreaterThanOrEqual(2))
    controller.abort()
    expect(events.slice(0, 2)).toEqual(['{"job_id": 1}', '{"job_id": 1}'])
  })

  it('stops on a refusal and reports it in words', async () => {
    const refusal = { detail: 'this is for the staging administrators', code: 'admin_only' }
    const fetchStub = vi.fn(async () => new Response(JSON.stringify(refusal), { status: 403 }))
    vi.stubGlobal('fetch', fetchStub)
    const onError = vi.fn()
    follow('/api/v1/logs/stream', new AbortController().signal, { onEvent: vi.fn(), onError }, { retryMs: 10 })
    await waitFor(() => expect(onError).toHaveBeenCalled())
    expect(onError.mock.calls[0][0]).toMatchObject({ status: 403, code: 'admin_only' })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(fetchStub).toHaveBeenCalledTimes(1)
  })

  it('does not reconnect a stream that ends by design', async () => {
    const fetchStub = vi.fn(async () => streamOf('event: job\ndata: {}\n\n'))
    vi.stubGlobal('fetch', fetchStub)
    const onOpen = vi.fn()
    follow('/api/v1/jobs/1/events', new AbortController().signal, { onEvent: vi.fn(), onOpen }, { reconnect: false, retryMs: 10 })
    await waitFor(() => expect(onOpen).toHaveBeenCalledTimes(1))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(fetchStub).toHaveBeenCalledTimes(1)
  })
})
