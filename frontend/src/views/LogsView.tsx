import { useEffect, useId, useLayoutEffect, useRef, useState } from 'react'
import type { ApiError } from '../api'
import { ErrorMessage } from '../components/ErrorMessage'
import { FilterSelect } from '../components/FilterSelect'
import { follow } from '../events'
import { formatFullTime, formatTime } from '../format'

const LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const
const BACKLOG = 200
const KEEP = 2000 // lines kept on screen
const SEARCH_DELAY_MS = 300

/** A record's first line is `<ISO time> <LEVEL> <logger> <message>`; other lines continue a record. */
export function levelOf(line: string): string | null {
  const level = line.split(' ', 3)[1]
  return (LEVELS as readonly string[]).includes(level) ? level : null
}

/** A log line with its time in the reader's locale (the full timestamp on hover); a continuation as it is. */
export function LogLine({ line }: { line: string }) {
  const level = levelOf(line)
  const space = line.indexOf(' ')
  if (level === null || space < 0) return <>{line}</>
  const iso = line.slice(0, space)
  return (
    <>
      <time dateTime={iso} title={formatFullTime(iso)}>
        {formatTime(iso)}
      </time>
      {line.slice(space)}
    </>
  )
}

/** The service log live: a bounded backlog, then each new line (filtered by the service). */
export function LogsView() {
  const [level, setLevel] = useState('')
  const [searchText, setSearchText] = useState('')
  const [search, setSearch] = useState('')
  const [lines, setLines] = useState<string[]>([])
  const [held, setHeld] = useState<string[]>([])
  const [paused, setPaused] = useState(false)
  const [followTail, setFollowTail] = useState(true)
  const [connected, setConnected] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  const pausedRef = useRef(paused)
  const viewer = useRef<HTMLPreElement>(null)
  const searchId = useId()

  useEffect(() => {
    pausedRef.current = paused
    if (!paused && held.length) {
      setLines((current) => [...current, ...held].slice(-KEEP))
      setHeld([])
    }
  }, [paused, held])

  useEffect(() => {
    const timer = window.setTimeout(() => setSearch(searchText.trim()), SEARCH_DELAY_MS)
    return () => window.clearTimeout(timer)
  }, [searchText])

  useEffect(() => {
    const controller = new AbortController()
    const params = new URLSearchParams({ backlog_lines: String(BACKLOG) })
    if (level) params.set('level', level)
    if (search) params.set('search', search)
    setLines([])
    setHeld([])
    setConnected(false)
    follow(`/api/v1/logs/stream?${params}`, controller.signal, {
      onOpen: () => {
        setConnected(true)
        setError(null)
        setLines([]) // every connection starts with the backlog again
        setHeld([])
      },
      onError: (streamError) => {
        setConnected(false)
        setError(streamError)
      },
      onEvent: (event, data) => {
        if (event !== 'line') return
        const line = JSON.parse(data) as string
        if (pausedRef.current) setHeld((current) => [...current, line].slice(-KEEP))
        else setLines((current) => [...current, line].slice(-KEEP))
      },
    })
    return () => controller.abort()
  }, [level, search])

  useLayoutEffect(() => {
    const element = viewer.current
    if (followTail && element) element.scrollTop = element.scrollHeight
  }, [lines, followTail])

  const onScroll = () => {
    const element = viewer.current
    if (!element) return
    const atBottom = element.scrollHeight - element.scrollTop - element.clientHeight < 24
    if (atBottom !== followTail) setFollowTail(atBottom)
  }

  return (
    <section className="panel logs-panel" aria-labelledby="logs-title">
      <h1 id="logs-title">Service log</h1>
      <div className="filters row">
        <FilterSelect label="Level at least" anyLabel="All levels" options={LEVELS} value={level} onChange={setLevel} />
        <div className="field grow">
          <label htmlFor={searchId}>Search</label>
          <input
            id={searchId}
            type="search"
            value={searchText}
            onChange={(event) => setSearchText(event.target.value)}
            placeholder="text in the line, e.g. a job id or a user"
          />
        </div>
        <div className="field buttons">
          <button type="button" onClick={() => setPaused((value) => !value)} aria-pressed={paused}>
            {paused ? `Resume${held.length ? ` (${held.length} new)` : ''}` : 'Pause'}
          </button>
          <button
            type="button"
            onClick={() => setFollowTail(true)}
            disabled={followTail}
            title="Scroll to the newest line and stay there"
          >
            Follow tail
          </button>
        </div>
      </div>
      <p className="muted small" role="status">
        {connected ? (paused ? 'Paused: new lines are held.' : 'Live.') : 'Connecting…'} {lines.length} lines shown.
      </p>
      {error ? <ErrorMessage error={error} /> : null}
      <pre
        className="log-view"
        ref={viewer}
        onScroll={onScroll}
        tabIndex={0}
        aria-label="Log lines"
        aria-live="off"
      >
        {lines.length === 0 && connected && held.length === 0 ? <span className="muted">No log lines match.</span> : null}
        {lines.map((line, index) => (
          <div key={index} className={`log-line log-${(levelOf(line) ?? 'cont').toLowerCase()}`}>
            <LogLine line={line} />
          </div>
        ))}
      </pre>
    </section>
  )
}
