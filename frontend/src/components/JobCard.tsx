import { useId, useState } from 'react'
import type { Job } from '../api'
import {
  formatBytes,
  formatFullTime,
  formatLifetime,
  formatRate,
  formatTime,
  relativeToRoot,
  throughput,
} from '../format'

interface Props {
  job: Job
  now: number
  /** The site's storage roots: sources are shown relative to them. */
  roots?: readonly string[]
  hint?: string
  onCancel: () => void
  onRetry: () => void
  /** Remove the staged data now; absent where releasing is not offered. */
  onRelease?: () => void
  /** Keep the data for a new lifetime (ISO 8601 or seconds) from now. */
  onExtend?: (lifetime: string) => void
  /** The lifetimes offered to extend with, in seconds (0: until released). */
  lifetimes?: readonly number[]
}

const STATE_WORDS: Record<Job['status'], string> = {
  waiting: 'Waiting for replication',
  queued: 'Queued',
  running: 'Running',
  succeeded: 'Succeeded',
  skipped: 'Already there',
  failed: 'Failed',
  cancelled: 'Cancelled',
}

/** One job: what, where, its state and progress, and what can be done with it. */
export function JobCard({ job, now, roots = [], hint, onCancel, onRetry, onRelease, onExtend, lifetimes = [] }: Props) {
  const active = job.status === 'waiting' || job.status === 'queued' || job.status === 'running'
  // the current rate while it runs, the average once it succeeded; none for what did not finish
  const showsRate = job.status === 'running' || job.status === 'succeeded'
  const rate = showsRate ? throughput(job.bytes_done, job.started_at, job.finished_at, now) : null
  const source = job.local_path_on_storage ?? job.did
  const percent = job.bytes ? Math.min(100, Math.round((job.bytes_done / job.bytes) * 100)) : null
  return (
    <li className={`job job-${job.status}`} aria-label={`Job ${job.job_id}, ${STATE_WORDS[job.status]}`}>
      <div className="job-head">
        <span className={`badge badge-${job.status}`}>{STATE_WORDS[job.status]}</span>
        <span className="job-id">#{job.job_id}</span>
        <span className="job-method">{job.method ?? 'unknown method'}</span>
        {job.username ? <span className="muted">for {job.username}</span> : null}
        <time className="muted job-time" dateTime={job.created_at ?? undefined} title={formatFullTime(job.created_at)}>
          {formatTime(job.created_at)}
        </time>
      </div>
      <div className="job-paths">
        <PathText shown={source ? relativeToRoot(source, roots) : null} full={source} />
        {job.method !== 'direct_download' ? (
          <>
            <span aria-hidden="true"> → </span>
            <span className="visually-hidden">to</span>
            <PathText shown={job.relative_path} full={job.destination} />
          </>
        ) : null}
      </div>
      {active || job.bytes ? (
        <div className="job-progress">
          <progress
            max={job.bytes ?? undefined}
            value={job.status === 'running' || !active ? job.bytes_done : undefined}
            aria-label={`Progress of job ${job.job_id}`}
          />
          <span className="muted">
            {formatBytes(job.bytes_done)} of {formatBytes(job.bytes)}
            {percent !== null ? ` (${percent}%)` : ''}
            {rate !== null ? ` · ${formatRate(rate)}` : ''}
            {job.files && job.files > 1 ? ` · ${job.files} files` : ''}
          </span>
        </div>
      ) : null}
      {job.error_reason && job.status === 'failed' ? (
        <div className="job-error" role="note">
          <strong>{job.error_reason}</strong>
          {hint ? <span className="muted"> — {hint}</span> : null}
        </div>
      ) : job.error_reason ? (
        <div className="muted" role="note">
          {capitalize(job.error_reason)}.
        </div>
      ) : null}
      {job.note ? <div className="muted">{job.note}</div> : null}
      <Lifetime job={job} />
      {job.checksum && job.status === 'succeeded' ? (
        <div className="muted small">
          checksum <code>{job.checksum}</code>
          {job.read_only ? ' · read-only' : ''}
        </div>
      ) : null}
      <div className="job-actions">
        {active ? (
          <button type="button" onClick={onCancel} aria-label={`Cancel job ${job.job_id}`}>
            Cancel
          </button>
        ) : null}
        {job.status === 'failed' || job.status === 'cancelled' ? (
          <button type="button" onClick={onRetry} aria-label={`Retry job ${job.job_id}`}>
            Retry
          </button>
        ) : null}
        {holdsData(job) && onExtend && lifetimes.length ? (
          <Extend jobId={job.job_id} lifetimes={lifetimes} onExtend={onExtend} />
        ) : null}
        {holdsData(job) && onRelease ? <Release jobId={job.job_id} onRelease={onRelease} /> : null}
      </div>
    </li>
  )
}

/** Whether the job staged data that is still held (what Release and Extend act on). */
export function holdsData(job: Job): boolean {
  return job.status === 'succeeded' && !job.released_at && job.method !== 'direct_download'
}

/** When the staged data goes, or when and why it went, and what its release kept. */
function Lifetime({ job }: { job: Job }) {
  if (job.released_at) {
    return (
      <div className="muted small job-lifetime">
        Data {job.release_reason ?? 'released'}{' '}
        <time dateTime={job.released_at} title={formatFullTime(job.released_at)}>
          {formatTime(job.released_at)}
        </time>
        {job.release_note ? <span> · kept: {job.release_note}</span> : null}
      </div>
    )
  }
  if (!holdsData(job)) return null
  return (
    <div className="muted small job-lifetime">
      {job.expires_at ? (
        <>
          Kept until{' '}
          <time dateTime={job.expires_at} title={formatFullTime(job.expires_at)}>
            {formatTime(job.expires_at)}
          </time>
        </>
      ) : job.lifetime === 0 ? (
        'Kept until released'
      ) : null}
    </div>
  )
}

/** Release in two steps: the first click asks, the second removes. */
function Release({ jobId, onRelease }: { jobId: number; onRelease: () => void }) {
  const [asking, setAsking] = useState(false)
  if (!asking) {
    return (
      <button type="button" onClick={() => setAsking(true)} aria-label={`Release the data of job ${jobId}`}>
        Release
      </button>
    )
  }
  return (
    <span className="confirm" role="group" aria-label={`Release the data of job ${jobId}?`}>
      <button type="button" className="danger" onClick={onRelease} aria-label={`Remove the data of job ${jobId} now`}>
        Remove now
      </button>
      <button type="button" className="link" onClick={() => setAsking(false)}>
        Keep it
      </button>
    </span>
  )
}

/** A new lifetime from now, picked from the site's choices. */
function Extend({
  jobId,
  lifetimes,
  onExtend,
}: {
  jobId: number
  lifetimes: readonly number[]
  onExtend: (lifetime: string) => void
}) {
  const [seconds, setSeconds] = useState(lifetimes[0])
  const id = useId()
  return (
    <span className="extend">
      <span aria-hidden="true">Keep for</span>
      <label htmlFor={id} className="visually-hidden">
        Keep the data of job {jobId} for
      </label>
      <select id={id} value={seconds} onChange={(event) => setSeconds(Number(event.target.value))}>
        {lifetimes.map((choice) => (
          <option key={choice} value={choice}>
            {formatLifetime(choice)}
          </option>
        ))}
      </select>
      <button type="button" onClick={() => onExtend(String(seconds))} aria-label={`Extend job ${jobId}`}>
        Extend
      </button>
    </span>
  )
}

/** A short path that breaks only after a slash; hovering shows the full path, copying copies it. */
function PathText({ shown, full }: { shown: string | null; full: string | null }) {
  if (!shown) return <code>—</code>
  const parts = shown.split('/')
  return (
    <code
      className="path"
      title={full ?? shown}
      onCopy={(event) => {
        event.clipboardData.setData('text/plain', full ?? shown)
        event.preventDefault()
      }}
    >
      {parts.map((part, index) => (
        <span key={index}>
          {part}
          {index < parts.length - 1 ? (
            <>
              /<wbr />
            </>
          ) : null}
        </span>
      ))}
    </code>
  )
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}
