import { useEffect, useId, useState, type FormEvent } from 'react'
import { api, ApiError, authHeaders, token, type ItemOutcome, type Me, type SiteConfig } from '../api'
import { DidField } from '../components/DidField'
import { ErrorMessage } from '../components/ErrorMessage'
import { SourcePicker } from '../components/SourcePicker'
import { baseName, formatLifetime, lifetimeChoices } from '../format'

interface Item {
  key: number
  source: string
  destination: string
  destinationEdited: boolean
}

interface Props {
  config: SiteConfig
  me: Me
  initialSource: string | null
  /** Whose area receives the data (kept by the app, so the Jobs view follows the same user). */
  username: string
  onUsername: (username: string) => void
  onSubmitted: (requestId: string) => void
}

let nextKey = 1
const newItem = (source = ''): Item => ({
  key: nextKey++,
  source,
  destination: baseName(source),
  destinationEdited: false,
})

export function StageView({ config, me, initialSource, username, onUsername, onSubmitted }: Props) {
  const methods = config.methods
  const [method, setMethod] = useState(methods[0]?.name ?? '')
  const [items, setItems] = useState<Item[]>(() => [newItem(initialSource ?? '')])
  const [picking, setPicking] = useState<number | null>(null)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  const [refused, setRefused] = useState<ItemOutcome[]>([])
  const [notice, setNotice] = useState<string | null>(null)
  const [sourceKind, setSourceKind] = useState<'path' | 'did'>('path')
  const [replicate, setReplicate] = useState(false)
  const [lifetime, setLifetime] = useState('') // '': the site's default
  const usernameId = useId()
  const methodId = useId()
  const lifetimeId = useId()
  const rules = config.lifetimes
  const lifetimes = lifetimeChoices(rules, me)

  const chosen = methods.find((item) => item.name === method)
  const isDownload = method === 'direct_download'
  const byDid = sourceKind === 'did' && !isDownload
  const usernameFixed = me.authenticated && !me.is_admin
  const shownItems = isDownload ? items.slice(0, 1) : items

  useEffect(() => {
    if (initialSource) setItems([newItem(initialSource)])
  }, [initialSource])

  const closePicker = (key: number) => {
    setPicking(null)
    // back where the keyboard user was, once the picked path is in the field; the caret at its end
    // scrolls the file name (not the root's long prefix) into view
    window.setTimeout(() => {
      const field = document.getElementById(`source-${key}`)
      if (!(field instanceof HTMLInputElement)) return
      field.focus()
      field.setSelectionRange(field.value.length, field.value.length)
    })
  }

  const update = (key: number, change: Partial<Item>) =>
    setItems((current) =>
      current.map((item) => {
        if (item.key !== key) return item
        const next = { ...item, ...change }
        if (change.source !== undefined && !item.destinationEdited) next.destination = defaultDestination(change.source)
        return next
      }),
    )

  // a DID's name (after scope:) names the destination, as a path's last part does
  const defaultDestination = (source: string) => baseName(byDid ? source.slice(source.indexOf(':') + 1) : source)

  const switchKind = (kind: 'path' | 'did') => {
    setSourceKind(kind)
    setItems([newItem()])
  }

  const submit = async (event: FormEvent) => {
    event.preventDefault()
    setError(null)
    setRefused([])
    setNotice(null)
    setBusy(true)
    try {
      if (isDownload) await download(shownItems[0].source)
      else await stage()
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : new ApiError(0, 'unknown', String(caught)))
    } finally {
      setBusy(false)
    }
  }

  const stage = async () => {
    const accepted = await api.submit(
      usernameFixed ? null : username.trim(),
      items.map((item) => ({
        method,
        ...(byDid
          ? { did: item.source.trim(), request_replication: replicate }
          : { local_path_on_storage: item.source.trim() }),
        relative_path: item.destination.trim(),
      })),
      lifetime || null,
    )
    const failures = accepted.items.filter((outcome) => outcome.error !== null)
    if (failures.length === 0) {
      setItems([newItem()])
      onSubmitted(accepted.request_id)
      return
    }
    setRefused(failures)
    const queued = accepted.items.length - failures.length
    if (queued > 0) setNotice(`${queued} of ${accepted.items.length} items were queued; see Jobs.`)
  }

  const download = async (source: string) => {
    const listing = await api.browse(source.trim()) // the same checks as the download: readable errors first
    const isFile = listing.entries.length === 1 && listing.entries[0].path === listing.path
    const name = isFile ? listing.entries[0].name : `${baseName(listing.path)}.zip` // a folder comes as one ZIP
    const url = api.downloadUrl(listing.path, usernameFixed ? null : username.trim() || null)
    if (token.get()) {
      // a link cannot carry the bearer token: fetch the file, then save it
      const response = await fetch(url, { headers: authHeaders() })
      if (!response.ok) throw new ApiError(response.status, `http_${response.status}`, 'The download was refused.')
      saveAs(URL.createObjectURL(await response.blob()), name)
    } else {
      saveAs(url, name)
    }
    setNotice(`Downloading ${name}; it is recorded in Jobs.`)
  }

  return (
    <section className="panel" aria-labelledby="stage-title">
      <h1 id="stage-title">Stage data</h1>
      <form onSubmit={submit} className="stage-form">
        <div className="row">
          <div className="field">
            <label htmlFor={methodId}>Method</label>
            <select id={methodId} value={method} onChange={(event) => setMethod(event.target.value)}>
              {methods.map((item) => (
                <option key={item.name} value={item.name}>
                  {item.name}
                </option>
              ))}
            </select>
            {chosen ? <p className="hint">{chosen.description}</p> : null}
          </div>
          <div className="field">
            <label htmlFor={usernameId}>Username</label>
            <input
              id={usernameId}
              value={usernameFixed ? (me.username ?? '') : username}
              onChange={(event) => onUsername(event.target.value)}
              readOnly={usernameFixed}
              required={!usernameFixed}
              autoComplete="username"
              placeholder="whose area receives the data"
            />
            {usernameFixed ? <p className="hint">From your sign-in.</p> : null}
          </div>
          {!isDownload ? (
            <div className="field">
              <label htmlFor={lifetimeId}>Keep for</label>
              <select id={lifetimeId} value={lifetime} onChange={(event) => setLifetime(event.target.value)}>
                <option value="">{formatLifetime(rules.default_seconds)} (default)</option>
                {lifetimes
                  .filter((seconds) => seconds !== rules.default_seconds)
                  .map((seconds) => (
                    <option key={seconds} value={String(seconds)}>
                      {formatLifetime(seconds)}
                    </option>
                  ))}
              </select>
              <p className="hint">Then the staged data is removed; you can extend it from Jobs.</p>
            </div>
          ) : null}
        </div>
        <fieldset>
          <legend>{isDownload ? 'File to download' : 'Items'}</legend>
          {config.dids && !isDownload ? (
            <div className="source-kind" role="radiogroup" aria-label="Sources are">
              <label>
                <input type="radio" name="source-kind" checked={!byDid} onChange={() => switchKind('path')} /> storage
                paths
              </label>
              <label>
                <input type="radio" name="source-kind" checked={byDid} onChange={() => switchKind('did')} /> Rucio DIDs
                {config.rucio_rse ? <span className="muted"> (replicas at {config.rucio_rse})</span> : null}
              </label>
            </div>
          ) : null}
          {shownItems.map((item, index) => (
            <div className={isDownload ? 'item download' : 'item'} key={item.key}>
              {byDid ? (
                <div className="field grow source">
                  <label htmlFor={`source-${item.key}`}>Rucio DID</label>
                  <DidField
                    id={`source-${item.key}`}
                    value={item.source}
                    onChange={(value) => update(item.key, { source: value })}
                  />
                </div>
              ) : (
                <div className="field grow source">
                  <label htmlFor={`source-${item.key}`}>Source on storage</label>
                  <div className="with-button">
                    <input
                      id={`source-${item.key}`}
                      value={item.source}
                      onChange={(event) => update(item.key, { source: event.target.value })}
                      required
                      title={item.source}
                      placeholder="/path/in/a/storage/root"
                      spellCheck={false}
                    />
                    <button type="button" onClick={() => setPicking(item.key)}>
                      Browse…
                    </button>
                  </div>
                </div>
              )}
              {isDownload ? null : (
                <div className="field grow">
                  <label htmlFor={`destination-${item.key}`}>Destination in the user area</label>
                  <input
                    id={`destination-${item.key}`}
                    value={item.destination}
                    onChange={(event) => update(item.key, { destination: event.target.value, destinationEdited: true })}
                    required
                    placeholder="relative/path"
                    spellCheck={false}
                  />
                </div>
              )}
              {shownItems.length > 1 ? (
                <button
                  type="button"
                  className="link remove"
                  aria-label={`Remove item ${index + 1}`}
                  onClick={() => setItems((current) => current.filter((other) => other.key !== item.key))}
                >
                  Remove
                </button>
              ) : null}
              {picking === item.key ? (
                <SourcePicker
                  folders={chosen?.accepts_directories ?? false}
                  onPick={(path) => {
                    update(item.key, { source: path })
                    closePicker(item.key)
                  }}
                  onClose={() => closePicker(item.key)}
                />
              ) : null}
            </div>
          ))}
          {byDid ? (
            <label className="check">
              <input type="checkbox" checked={replicate} onChange={(event) => setReplicate(event.target.checked)} />{' '}
              Files not at this site: ask Rucio to replicate them here, and stage them when they arrive
            </label>
          ) : null}
          {isDownload ? null : (
            <button type="button" onClick={() => setItems((current) => [...current, newItem()])}>
              + Add item
            </button>
          )}
        </fieldset>
        <div className="actions">
          <button type="submit" className="primary" disabled={busy || !method}>
            {busy ? 'Submitting…' : isDownload ? 'Download' : items.length > 1 ? `Stage ${items.length} items` : 'Stage'}
          </button>
        </div>
      </form>
      {error ? <ErrorMessage error={error} hint={config.error_codes[error.code]} /> : null}
      {refused.map((outcome) => (
        <ErrorMessage
          key={outcome.index}
          error={new ApiError(0, outcome.error?.code ?? '', `Item ${outcome.index + 1}: ${outcome.error?.detail ?? ''}`)}
          hint={config.error_codes[outcome.error?.code ?? '']}
        />
      ))}
      {notice ? (
        <p className="notice" role="status">
          {notice}
        </p>
      ) : null}
      {Object.keys(config.unavailable_methods).length > 0 ? (
        <details className="hint">
          <summary>Methods not offered here</summary>
          <ul>
            {Object.entries(config.unavailable_methods).map(([name, reason]) => (
              <li key={name}>
                <code>{name}</code>: {reason}
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </section>
  )
}

function saveAs(href: string, name: string): void {
  const link = document.createElement('a')
  link.href = href
  link.download = name
  document.body.appendChild(link)
  link.click()
  link.remove()
  if (href.startsWith('blob:')) setTimeout(() => URL.revokeObjectURL(href), 60_000)
}
