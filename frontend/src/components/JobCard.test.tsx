import { render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { job } from '../test/fixtures'
import { JobCard } from './JobCard'

const start = '2026-11-23T10:00:00.000Z'

describe('JobCard', () => {
  it('shows progress, bytes and throughput of a running job, and cancels it', async () => {
    const onCancel = vi.fn()
    const running = job({ status: 'running', bytes: 4 * 1048576, bytes_done: 1048576, started_at: start })
    render(<JobCard job={running} now={Date.parse(start) + 1000} onCancel={onCancel} onRetry={vi.fn()} />)
    const bar = screen.getByRole('progressbar', { name: 'Progress of job 1' })
    expect(bar).toHaveAttribute('value', String(1048576))
    expect(bar).toHaveAttribute('max', String(4 * 1048576))
    expect(screen.getByText(/1\.0 MiB of 4\.0 MiB \(25%\) · 1\.0 MiB\/s/)).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Retry job 1' })).not.toBeInTheDocument()
    await userEvent.click(screen.getByRole('button', { name: 'Cancel job 1' }))
    expect(onCancel).toHaveBeenCalledOnce()
  })

  it('shows a job waiting for replication as active: no progress yet, and it can be cancelled', async () => {
    const onCancel = vi.fn()
    const waiting = job({ status: 'waiting', did: 'sky:far.fits', local_path_on_storage: null, bytes: null })
    render(<JobCard job={waiting} now={0} onCancel={onCancel} onRetry={vi.fn()} />)
    expect(screen.getByText('Waiting for replication')).toBeInTheDocument()
    expect(screen.getByRole('progressbar', { name: 'Progress of job 1' })).not.toHaveAttribute('value')
    await userEvent.click(screen.getByRole('button', { name: 'Cancel job 1' }))
    expect(onCancel).toHaveBeenCalledOnce()
  })

  it('explains a failure in words and offers a retry', async () => {
    const onRetry = vi.fn()
    const failed = job({ status: 'failed', error_code: 'source_not_found', error_reason: "source 'x' does not exist" })
    render(<JobCard job={failed} now={0} hint="The source does not exist." onCancel={vi.fn()} onRetry={onRetry} />)
    expect(screen.getByText('Failed')).toBeInTheDocument()
    expect(screen.getByRole('note')).toHaveTextContent("source 'x' does not exist — The source does not exist.")
    expect(screen.queryByRole('button', { name: /Cancel/ })).not.toBeInTheDocument()
    await userEvent.click(screen.getByRole('button', { name: 'Retry job 1' }))
    expect(onRetry).toHaveBeenCalledOnce()
  })

  it('reports a cancellation as a fact, not an error', () => {
    const cancelled = job({ status: 'cancelled', error_code: 'job_cancelled', error_reason: 'cancelled while it ran' })
    render(<JobCard job={cancelled} now={0} hint="The job was cancelled." onCancel={vi.fn()} onRetry={vi.fn()} />)
    expect(screen.getByRole('note')).toHaveTextContent(/^Cancelled while it ran\.$/)
    expect(screen.getByRole('note')).not.toHaveClass('job-error')
    expect(screen.getByRole('button', { name: 'Retry job 1' })).toBeInTheDocument()
  })

  it('says a skipped job was already there, with no actions', () => {
    render(<JobCard job={job({ status: 'skipped', bytes: 10, bytes_done: 10 })} now={0} onCancel={vi.fn()} onRetry={vi.fn()} />)
    expect(screen.getByText('Already there')).toBeInTheDocument()
    expect(screen.queryAllByRole('button')).toHaveLength(0)
  })

  it('shows a finished copy with its average rate, and no rate for what did not finish', () => {
    const timing = { bytes: 4 * 1048576, bytes_done: 2 * 1048576, started_at: start, finished_at: '2026-11-23T10:00:02.000Z' }
    const { rerender } = render(
      <JobCard job={job({ status: 'succeeded', ...timing })} now={0} onCancel={vi.fn()} onRetry={vi.fn()} />,
    )
    expect(screen.getByText(/ · 1\.0 MiB\/s/)).toBeInTheDocument()
    for (const status of ['cancelled', 'failed'] as const) {
      rerender(<JobCard job={job({ status, ...timing })} now={0} onCancel={vi.fn()} onRetry={vi.fn()} />)
      expect(screen.queryByText(/\/s/)).not.toBeInTheDocument()
    }
  })

  it('shows the source relative to its storage root and the destination relative to the area, full on hover', () => {
    const staged = job({
      local_path_on_storage: '/data/archive/obs/run1/vis.ms',
      relative_path: 'data/vis.ms',
      destination: '/data/users/ann/data/vis.ms',
    })
    render(<JobCard job={staged} now={0} roots={['/data/legacy', '/data/archive/']} onCancel={vi.fn()} onRetry={vi.fn()} />)
    const source = screen.getByTitle('/data/archive/obs/run1/vis.ms')
    expect(source).toHaveTextContent(/^obs\/run1\/vis\.ms$/)
    expect(source.querySelectorAll('wbr')).toHaveLength(2)
    expect(screen.getByTitle('/data/users/ann/data/vis.ms')).toHaveTextContent(/^data\/vis\.ms$/)
  })

  it('shows when held data expires, extends it by a chosen lifetime, and releases it after a confirmation', async () => {
    const onRelease = vi.fn()
    const onExtend = vi.fn()
    const held = job({ status: 'succeeded', bytes: 10, bytes_done: 10, expires_at: '2026-12-07T10:00:00.000Z' })
    render(
      <JobCard
        job={held}
        now={0}
        onCancel={vi.fn()}
        onRetry={vi.fn()}
        onRelease={onRelease}
        onExtend={onExtend}
        lifetimes={[86400, 7 * 86400, 90 * 86400]}
      />,
    )
    expect(screen.getByText(/Kept until/)).toBeInTheDocument()
    await userEvent.selectOptions(screen.getByLabelText('Keep the data of job 1 for'), '7 days')
    await userEvent.click(screen.getByRole('button', { name: 'Extend job 1' }))
    expect(onExtend).toHaveBeenCalledWith(String(7 * 86400))
    await userEvent.click(screen.getByRole('button', { name: 'Release the data of job 1' }))
    expect(onRelease).not.toHaveBeenCalled() // asked first
    await userEvent.click(screen.getByRole('button', { name: 'Keep it' }))
    await userEvent.click(screen.getByRole('button', { name: 'Release the data of job 1' }))
    await userEvent.click(screen.getByRole('button', { name: 'Remove the data of job 1 now' }))
    expect(onRelease).toHaveBeenCalledOnce()
  })

  it('shows a release and what it kept, and offers no more actions on the data', () => {
    const released = job({
      status: 'succeeded',
      released_at: '2026-12-07T10:00:00.000Z',
      release_reason: 'expired',
      release_note: "'tree/a.dat' was modified after it was staged; kept",
    })
    render(<JobCard job={released} now={0} onCancel={vi.fn()} onRetry={vi.fn()} onRelease={vi.fn()} onExtend={vi.fn()} lifetimes={[86400]} />)
    expect(screen.getByText(/Data expired/)).toHaveTextContent("kept: 'tree/a.dat' was modified after it was staged; kept")
    expect(screen.queryByRole('button', { name: /Release|Extend/ })).not.toBeInTheDocument()
  })
})
