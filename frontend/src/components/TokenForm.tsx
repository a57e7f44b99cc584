import { useState, type FormEvent } from 'react'
import type { ApiError } from '../api'

/** OIDC mode without a sign-in proxy: paste an access token (kept for this tab only). */
export function TokenForm({ error, onSubmit }: { error: ApiError; onSubmit: (token: string) => void }) {
  const [value, setValue] = useState('')
  const submit = (event: FormEvent) => {
    event.preventDefault()
    if (value.trim()) onSubmit(value.trim())
  }
  return (
    <section className="panel narrow">
      <h1>Sign in</h1>
      <p>{error.message}</p>
      <form onSubmit={submit}>
        <label htmlFor="token">Access token from your identity provider</label>
        <textarea id="token" rows={4} value={value} onChange={(event) => setValue(event.target.value)} />
        <button type="submit" className="primary" disabled={!value.trim()}>
          Sign in
        </button>
      </form>
    </section>
  )
}
