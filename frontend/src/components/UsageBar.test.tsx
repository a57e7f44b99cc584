import { render, screen } from '@testing-library/react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { stubFetch } from '../test/fixtures'
import { UsageBar } from './UsageBar'

afterEach(() => vi.unstubAllGlobals())

const held = (bytes: number, files: number, jobs: number) => ({ bytes, files, jobs })

describe('UsageBar', () => {
  it('shows what the user holds against the quota, and what expires soon on hover', async () => {
    const calls = stubFetch({
      'GET /api/v1/usage': {
        body: {
          username: 'ann',
          held: held(512 * 1048576, 3, 2),
          by_method: {},
          expiring_24h: held(1048576, 1, 1),
          quota_bytes: 1073741824,
        },
      },
    })
    render(<UsageBar username="ann" refreshKey="jobs" />)
    expect(await screen.findByText('Holding 512 MiB of 1.0 GiB')).toBeInTheDocument()
    const meter = screen.getByRole('meter', { name: 'Staged data held, of your quota' })
    expect(meter).toHaveAttribute('value', String(512 * 1048576))
    expect(screen.getByTitle('3 files in 2 jobs; 1.0 MiB expire within 24 hours')).toBeInTheDocument()
    expect(calls[0].url).toContain('/api/v1/usage?username=ann')
  })

  it('shows no bar without a quota, and nothing when usage cannot be read', async () => {
    stubFetch({
      'GET /api/v1/usage': {
        body: { username: null, held: held(0, 0, 0), by_method: {}, expiring_24h: held(0, 0, 0), quota_bytes: null },
      },
    })
    const { unmount } = render(<UsageBar username={null} refreshKey="stage" />)
    expect(await screen.findByText('Holding 0 B')).toBeInTheDocument()
    expect(screen.queryByRole('meter')).not.toBeInTheDocument()
    unmount()
    stubFetch({ 'GET /api/v1/usage': { status: 503, body: { detail: 'down', code: 'database_unavailable' } } })
    const { container } = render(<UsageBar username={null} refreshKey="stage" />)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(container).toBeEmptyDOMElement()
  })

  it('reads the usage again once jobs stop ending, not once per job', async () => {
    let bytes = 0
    const calls = stubFetch({
      'GET /api/v1/usage': () => ({
        body: { username: 'ann', held: held(bytes, 1, 1), by_method: {}, expiring_24h: held(0, 0, 0), quota_bytes: null },
      }),
    })
    const { rerender } = render(<UsageBar username="ann" refreshKey="jobs:0" />)
    expect(await screen.findByText('Holding 0 B')).toBeInTheDocument()
    bytes = 2048
    for (let ended = 1; ended <= 5; ended += 1) rerender(<UsageBar username="ann" refreshKey={`jobs:${ended}`} />)
    expect(await screen.findByText('Holding 2.0 KiB', {}, { timeout: 2000 })).toBeInTheDocument()
    expect(calls.filter((call) => call.url.includes('/api/v1/usage'))).toHaveLength(2)
  })
})
