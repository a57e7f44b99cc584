import { describe, expect, it } from 'vitest'
import { levelOf } from './LogsView'

describe('levelOf', () => {
  it('reads the level of a service log line', () => {
    expect(levelOf('2026-11-23 10:00:00,107 WARNING skao_staging.app trusted')).toBe('WARNING')
    expect(levelOf('Traceback (most recent call last):')).toBeNull()
  })
})
