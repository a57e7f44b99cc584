import { useCallback, useEffect, useRef, useState } from 'react'
import { api, type Usage } from '../api'
import { formatBytes } from '../format'

const REFRESH_MS = 60_000
const SETTLE_MS = 500

interface Props {
  /** Whose usage: null for the signed-in caller. */
  username: string | null
  /** Changes when something may have changed what is held (the view shown), to read it again. */
  refreshKey: string
}

/** What the user holds now against the site's quota on held data, in the header. */
export function UsageBar({ username, refreshKey }: Props) {
  const [usage, setUsage] = useState<Usage | null>(null)
  const generation = useRef(0) // answers to earlier reads (another user's) are dropped

  const read = useCallback(() => {
    const asked = generation.current
    api
      .usage(username)
      .then((found) => {
        if (generation.current === asked) setUsage(found)
      })
      .catch(() => {
        if (generation.current === asked) setUsage(null) // usage is a convenience: its failure is not the page's
      })
  }, [username])

  useEffect(() => {
    generation.current += 1
    read()
    const timer = window.setInterval(read, REFRESH_MS)
    return () => {
      generation.current += 1
      window.clearInterval(timer)
    }
  }, [read])

  const first = useRef(true)
  useEffect(() => {
    if (first.current) {
      first.current = false
      return
    }
    // many jobs ending at once (a dataset) ask once, after they pause
    const timer = window.setTimeout(read, SETTLE_MS)
    return () => window.clearTimeout(timer)
  }, [refreshKey, read])

  if (!usage) return null
  const held = usage.held.bytes
  const quota = usage.quota_bytes
  const expiring = usage.expiring_24h.bytes
  const title = `${usage.held.files} files in ${usage.held.jobs} jobs${expiring ? `; ${formatBytes(expiring)} expire within 24 hours` : ''}`
  return (
    <span className="usage" title={title}>
      {quota ? (
        <meter min={0} max={quota} value={held} high={quota * 0.9} aria-label="Staged data held, of your quota" />
      ) : null}
      <span>
        Holding {formatBytes(held)}
        {quota ? ` of ${formatBytes(quota)}` : ''}
      </span>
    </span>
  )
}
