import { afterEach, describe, expect, it, vi } from 'vitest'
import { api, ApiError, messageOf, request } from './api'
import { stubFetch } from './test/fixtures'

afterEach(() => vi.unstubAllGlobals())

describe('messageOf', () => {
  it('uses the service sentence and code', () => {
    expect(messageOf(404, { detail: "source 'x' does not exist", code: 'source_not_found' })).toEqual({
      code: 'source_not_found',
      message: "Source 'x' does not exist",
    })
  })
  it('never shows raw JSON for odd bodies', () => {
    expect(messageOf(422, { detail: [{ loc: ['body'] }] }).message).toBe('The request was not understood')
    expect(messageOf(503, null).message).toMatch(/unavailable/)
    expect(messageOf(418, '<html>').message).toMatch(/HTTP 418/)
  })
})

describe('request', () => {
  it('throws an ApiError carrying status and code', async () => {
    stubFetch({ 'GET /api/v1/jobs/9': { status: 404, body: { detail: 'there is no job 9', code: 'job_not_found' } } })
    const error = await request('GET', '/api/v1/jobs/9').catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ApiError)
    expect(error).toMatchObject({ status: 404, code: 'job_not_found', message: 'There is no job 9' })
  })
  it('reports an unreachable service in words', async () => {
    vi.stubGlobal('fetch', vi.fn(() => Promise.reject(new TypeError('Failed to fetch'))))
    await expect(api.config()).rejects.toMatchObject({ code: 'network_error' })
  })
  it('sends the bearer token when signed in', async () => {
    sessionStorage.setItem('skao-staging-token', 'abc')
    const fetchStub = vi.fn(async () => new Response('{}', { status: 200 }))
    vi.stubGlobal('fetch', fetchStub)
    await api.me()
    expect(fetchStub).toHaveBeenCalledWith('/api/v1/me', expect.objectContaining({
      headers: expect.objectContaining({ Authorization: 'Bearer abc' }),
    }))
  })
  it('builds queries without empty values', async () => {
    const calls = stubFetch({ 'GET /api/v1/jobs': { body: { jobs: [], total: 0, limit: 5, offset: 0 } } })
    await api.jobs({ username: 'ann', status: '', method: 'local_copy', limit: 5 })
    expect(calls[0].url).toBe('/api/v1/jobs?username=ann&method=local_copy&limit=5')
  })
})
