import type { Job } from '../api'
import { formatBytes, formatFullTime, formatRate, formatTime, relativeToRoot, throughput } from '../format'

interface Props {
  job: Job
  now: number
  /** The site's storage roots: sources are shown relative to them. */
  roots?: readonly string[]
  hint?: string
  onCancel: () => void
  onRetry: () => void
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
export function JobCard({ job, now, roots = [], hint, onCancel, onRetry }: Props) {
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
      </div>
    </li>
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
