import { render, screen } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import { JobCard } from '../components/JobCard'
import { formatTime } from '../format'
import { job } from '../test/fixtures'
import { levelOf, LogLine } from './LogsView'

const LINE = '2026-11-23T10:00:00.107Z WARNING skao_staging.app trusted'

describe('levelOf', () => {
  it('reads the level of a service log line', () => {
    expect(levelOf(LINE)).toBe('WARNING')
    expect(levelOf('Traceback (most recent call last):')).toBeNull()
  })
})

describe('LogLine', () => {
  it('shows the time as job cards do, in the reader locale, with the full timestamp on hover', () => {
    const { container } = render(
      <>
        <div data-testid="log">
          <LogLine line={LINE} />
        </div>
        <ol>
          <JobCard job={job({ created_at: '2026-11-23T10:00:00.107Z' })} now={0} onCancel={vi.fn()} onRetry={vi.fn()} />
        </ol>
      </>,
    )
    const [logTime, cardTime] = Array.from(container.querySelectorAll('time'))
    expect(logTime.textContent).toBe(formatTime('2026-11-23T10:00:00.107Z'))
    expect(cardTime.textContent).toBe(logTime.textContent)
    expect(logTime.getAttribute('title')).toMatch(/2026.*00[.,]107/)
    expect(cardTime.getAttribute('title')).toBe(logTime.getAttribute('title'))
    expect(screen.getByTestId('log')).toHaveTextContent(/ WARNING skao_staging\.app trusted$/)
  })

  it('leaves a continuation line as it is', () => {
    render(
      <div data-testid="log">
        <LogLine line="  File x.py, line 3" />
      </div>,
    )
    expect(screen.getByTestId('log').textContent).toBe('  File x.py, line 3')
  })
})
