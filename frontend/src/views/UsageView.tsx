import { useEffect, useState } from 'react'
import { api, ApiError, type Usage } from '../api'
import { ErrorMessage } from '../components/ErrorMessage'
import { formatBytes } from '../format'

/** Every user who holds staged data (admins): what, how much of the quota, and what expires soon. */
export function UsageView() {
  const [rows, setRows] = useState<Usage[] | null>(null)
  const [error, setError] = useState<ApiError | null>(null)

  useEffect(() => {
    api
      .usageByUser()
      .then((found) => setRows([...found].sort((a, b) => b.held.bytes - a.held.bytes)))
      .catch((caught: unknown) => setError(caught instanceof ApiError ? caught : null))
  }, [])

  return (
    <section className="panel" aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      {error ? <ErrorMessage error={error} /> : null}
      {rows === null && !error ? (
        <p className="loading" role="status">
          Loading usage…
        </p>
      ) : null}
      {rows !== null && rows.length === 0 ? <p className="empty">Nobody holds staged data.</p> : null}
      {rows !== null && rows.length > 0 ? (
        <table className="usage-table">
          <caption className="visually-hidden">Staged data held by each user, largest first</caption>
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Held</th>
              <th scope="col">Files</th>
              <th scope="col">Jobs</th>
              <th scope="col">Expiring within 24 h</th>
              <th scope="col">Of quota</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.username ?? ''}>
                <th scope="row">{row.username ?? '(none)'}</th>
                <td>{formatBytes(row.held.bytes)}</td>
                <td>{row.held.files}</td>
                <td>{row.held.jobs}</td>
                <td>{formatBytes(row.expiring_24h.bytes)}</td>
                <td>{row.quota_bytes ? `${Math.round((row.held.bytes / row.quota_bytes) * 100)}%` : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  )
}
