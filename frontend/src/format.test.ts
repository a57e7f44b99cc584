import { describe, expect, it } from 'vitest'
import { baseName, formatBytes, formatRate, throughput } from './format'

describe('format', () => {
  it('formats bytes in binary units', () => {
    expect(formatBytes(null)).toBe('—')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MiB')
  })
  it('computes throughput from start to end or now', () => {
    const start = '2026-11-23T10:00:00.000Z'
    const now = Date.parse(start) + 2000
    expect(throughput(4096, start, null, now)).toBe(2048)
    expect(throughput(4096, start, '2026-11-23T10:00:04.000Z', now)).toBe(1024)
    expect(throughput(0, start, null, now)).toBeNull()
    expect(throughput(10, null, null, now)).toBeNull()
    expect(throughput(8, start, '2026-11-23T10:00:00.011Z', now)).toBeNull() // 11 ms: no meaningful rate
    expect(formatRate(2048)).toBe('2.0 KiB/s')
  })
  it('takes the last part of a path', () => {
    expect(baseName('/data/archive/obs/')).toBe('obs')
    expect(baseName('')).toBe('')
  })
})
