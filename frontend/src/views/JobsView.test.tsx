import { describe, expect, it } from 'vitest'
import { job } from '../test/fixtures'
import { merge } from './JobsView'

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
