import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { config, developer, job, stubFetch } from '../test/fixtures'
import { JobsView, merge } from './JobsView'

vi.mock('../events', () => ({ follow: vi.fn() })) // the live stream is exercised end to end in Chromium

afterEach(() => vi.unstubAllGlobals())

describe('merge', () => {
  const list = [job({ job_id: 5 }), job({ job_id: 3 })]
  it('replaces a job in place', () => {
    const merged = merge(list, job({ job_id: 3, status: 'running' }), true)
    expect(merged.map((item) => [item.job_id, item.status])).toEqual([
      [5, 'queued'],
      [3, 'running'],
    ])
  })
  it('inserts a new job newest first', () => {
    expect(merge(list, job({ job_id: 4 }), true).map((item) => item.job_id)).toEqual([5, 4, 3])
    expect(merge(list, job({ job_id: 9 }), true).map((item) => item.job_id)).toEqual([9, 5, 3])
    expect(merge(list, job({ job_id: 1 }), true).map((item) => item.job_id)).toEqual([5, 3, 1])
  })
  it('drops a job that no longer matches the filters', () => {
    expect(merge(list, job({ job_id: 5, status: 'failed' }), false).map((item) => item.job_id)).toEqual([3])
  })
})

describe('JobsView', () => {
  it('shows older jobs page by page', async () => {
    const page = (from: number, count: number) => Array.from({ length: count }, (_, i) => job({ job_id: from - i }))
    const calls = stubFetch({ 'GET /api/v1/jobs': { body: { jobs: page(250, 100), total: 250, limit: 100, offset: 0 } } })
    render(<JobsView config={config} me={developer} defaultUser="ann" />)
    const list = await screen.findByRole('list', { name: 'Jobs, newest first' })
    expect(within(list).getAllByRole('listitem')).toHaveLength(100)
    expect(calls[0].url).toBe('/api/v1/jobs?username=ann&limit=100')
    const older = stubFetch({ 'GET /api/v1/jobs': { body: { jobs: page(150, 100), total: 250, limit: 100, offset: 100 } } })
    await userEvent.click(screen.getByRole('button', { name: 'Show 100 older' }))
    expect(await screen.findByRole('button', { name: 'Show 50 older' })).toBeInTheDocument()
    expect(older[0].url).toBe('/api/v1/jobs?username=ann&limit=100&offset=100')
    const items = within(list).getAllByRole('listitem')
    expect(items).toHaveLength(200)
    expect(items[199]).toHaveAccessibleName(/^Job 51,/)
  })

  it('says so when there are no jobs', async () => {
    stubFetch({ 'GET /api/v1/jobs': { body: { jobs: [], total: 0, limit: 100, offset: 0 } } })
    render(<JobsView config={config} me={developer} defaultUser="" />)
    expect(await screen.findByText(/No jobs yet/)).toBeInTheDocument()
  })
})
