import { useCallback, useEffect, useId, useState } from 'react'
import { api, ApiError, JOB_STATUSES, type Job, type Me, type SiteConfig } from '../api'
import { ErrorMessage } from '../components/ErrorMessage'
import { FilterSelect } from '../components/FilterSelect'
import { JobCard } from '../components/JobCard'
import { follow } from '../events'
import { lifetimeChoices } from '../format'

const PAGE = 100

interface Props {
  config: SiteConfig
  me: Me
  /** The user whose jobs are shown first (the one last staged for). */
  defaultUser: string
  /** Called when what the user holds may have changed (a job ended, data was released or extended). */
  onHoldingsChanged?: () => void
}

const ENDED: readonly string[] = ['succeeded', 'skipped', 'failed', 'cancelled']

/** The user's jobs, newest first, kept current by the service's event stream. */
export function JobsView({ config, me, defaultUser, onHoldingsChanged }: Props) {
  const [status, setStatus] = useState('')
  const [method, setMethod] = useState('')
  const [username, setUsername] = useState(me.authenticated && !me.is_admin ? (me.username ?? '') : defaultUser)
  const [jobs, setJobs] = useState<Job[] | null>(null)
  const [total, setTotal] = useState(0)
  const [error, setError] = useState<ApiError | null>(null)
  const [streamError, setStreamError] = useState<ApiError | null>(null)
  const [actionError, setActionError] = useState<ApiError | null>(null)
  const [now, setNow] = useState(() => Date.now())
  const usernameId = useId()
  const userFilter = username.trim()
  const lifetimes = lifetimeChoices(config.lifetimes, me)

  const matches = useCallback(
    (job: Job) =>
      (!status || job.status === status) &&
      (!method || job.method === method) &&
      (!userFilter || job.username === userFilter),
    [status, method, userFilter],
  )

  /** A page from the API with what the list already holds on top (streamed changes are fresher). */
  const withNewer = useCallback(
    (page: Job[], held: Job[] | null) => (held ?? []).reduce((list, job) => merge(list, job, matches(job)), page),
    [matches],
  )

  useEffect(() => {
    const controller = new AbortController()
    setJobs(null)
    setError(null)
    // follow first, then load the page: a change between the two is not lost
    let connections = 0
    follow(`/api/v1/events${userFilter ? `?username=${encodeURIComponent(userFilter)}` : ''}`, controller.signal, {
      onOpen: () => {
        setStreamError(null)
        connections += 1
        if (connections > 1) load() // changes made while the stream was down are not replayed
      },
      onError: setStreamError,
      onEvent: (event, data) => {
        if (event !== 'job') return
        const job = JSON.parse(data) as Job
        setNow(Date.now()) // progress is measured up to the moment it arrived
        if (ENDED.includes(job.status)) onHoldingsChanged?.()
        setJobs((current) => (current === null ? current : merge(current, job, matches(job))))
      },
    })
    const load = () =>
      api
        .jobs({ username: userFilter || null, status, method, limit: PAGE })
        .then((page) => {
          if (controller.signal.aborted) return
          setNow(Date.now())
          setJobs((current) => withNewer(page.jobs, current))
          setTotal(page.total)
        })
        .catch((caught: unknown) => {
          if (!controller.signal.aborted) setError(caught instanceof ApiError ? caught : null)
        })
    void load()
    return () => controller.abort()
  }, [status, method, userFilter, matches, withNewer, onHoldingsChanged])

  const running = jobs?.some((job) => job.status === 'running') ?? false
  useEffect(() => {
    if (!running) return
    const timer = window.setInterval(() => setNow(Date.now()), 1000)
    return () => window.clearInterval(timer)
  }, [running])

  const [loadingOlder, setLoadingOlder] = useState(false)
  const loadOlder = async () => {
    setLoadingOlder(true)
    try {
      const page = await api.jobs({ username: userFilter || null, status, method, limit: PAGE, offset: jobs?.length ?? 0 })
      setJobs((current) => withNewer(page.jobs, current))
      setTotal(page.total)
    } catch (caught) {
      setActionError(caught instanceof ApiError ? caught : null)
    } finally {
      setLoadingOlder(false)
    }
  }

  const act = async (action: (id: number) => Promise<Job>, job: Job) => {
    setActionError(null)
    try {
      const changed = await action(job.job_id)
      setJobs((current) => (current === null ? current : merge(current, changed, true)))
      onHoldingsChanged?.()
    } catch (caught) {
      setActionError(caught instanceof ApiError ? caught : null)
    }
  }

  return (
    <section className="panel" aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <div className="filters row">
        <FilterSelect label="State" anyLabel="All states" options={JOB_STATUSES} value={status} onChange={setStatus} />
        <FilterSelect
          label="Method"
          anyLabel="All methods"
          options={config.methods.map((item) => item.name)}
          value={method}
          onChange={setMethod}
        />
        <div className="field">
          <label htmlFor={usernameId}>User</label>
          <input
            id={usernameId}
            value={username}
            onChange={(event) => setUsername(event.target.value)}
            readOnly={me.authenticated && !me.is_admin}
            placeholder="everyone"
          />
        </div>
      </div>
      {streamError ? <ErrorMessage error={streamError} /> : null}
      {actionError ? <ErrorMessage error={actionError} hint={config.error_codes[actionError.code]} /> : null}
      {error ? <ErrorMessage error={error} /> : null}
      {jobs === null && !error ? (
        <p className="loading" role="status">
          Loading jobs…
        </p>
      ) : null}
      {jobs !== null && jobs.length === 0 ? (
        <p className="empty">
          No jobs {status || method || userFilter ? 'match these filters' : 'yet'}. <a href="#/stage">Stage data</a>.
        </p>
      ) : null}
      {jobs !== null && jobs.length > 0 ? (
        <>
          <ol className="jobs" aria-label="Jobs, newest first">
            {jobs.map((job) => (
              <JobCard
                key={job.job_id}
                job={job}
                now={now}
                roots={config.storage_roots}
                hint={job.error_code ? config.error_codes[job.error_code] : undefined}
                onCancel={() => void act(api.cancel, job)}
                onRetry={() => void act(api.retry, job)}
                onRelease={() => void act(api.release, job)}
                onExtend={(lifetime) => void act((id) => api.extend(id, lifetime), job)}
                lifetimes={lifetimes}
              />
            ))}
          </ol>
          {total > jobs.length ? (
            <p className="muted more">
              The newest {jobs.length} of {total} jobs are shown.{' '}
              <button type="button" onClick={() => void loadOlder()} disabled={loadingOlder}>
                {loadingOlder ? 'Loading…' : `Show ${Math.min(PAGE, total - jobs.length)} older`}
              </button>
            </p>
          ) : null}
        </>
      ) : null}
    </section>
  )
}

/** The list with `job` replaced, added at its place (newest first), or removed when it no longer matches. */
export function merge(list: Job[], job: Job, keep: boolean): Job[] {
  const others = list.filter((item) => item.job_id !== job.job_id)
  if (!keep) return others
  const at = others.findIndex((item) => item.job_id < job.job_id)
  return at === -1 ? [...others, job] : [...others.slice(0, at), job, ...others.slice(at)]
}
