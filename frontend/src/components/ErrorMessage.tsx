import type { ApiError } from '../api'

/** An API error as a sentence, with its code for support requests. */
export function ErrorMessage({ error, hint }: { error: ApiError; hint?: string }) {
  return (
    <div className="error" role="alert">
      <strong>{error.message}</strong>
      {hint ? <p>{hint}</p> : null}
      {error.code && !error.code.startsWith('http_') ? <span className="code">({error.code})</span> : null}
    </div>
  )
}
