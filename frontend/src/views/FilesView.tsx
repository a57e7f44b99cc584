import { useId, useState, type FormEvent } from 'react'
import { api, ApiError, type CreatedFile, type SiteConfig } from '../api'
import { ErrorMessage } from '../components/ErrorMessage'
import { formatBytes } from '../format'

const UNITS = { B: 1, KiB: 1024, MiB: 1024 * 1024 } as const
type Unit = keyof typeof UNITS

interface Props {
  config: SiteConfig
  onStage: (source: string) => void
}

/** The file-creation tool: a test file of random bytes or given text in the first storage root. */
export function FilesView({ config, onStage }: Props) {
  const [path, setPath] = useState('')
  const [kind, setKind] = useState<'size' | 'text'>('size')
  const [amount, setAmount] = useState('1')
  const [unit, setUnit] = useState<Unit>('MiB')
  const [text, setText] = useState('')
  const [busy, setBusy] = useState(false)
  const [created, setCreated] = useState<CreatedFile | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  const ids = { path: useId(), amount: useId(), unit: useId(), text: useId() }
  const size = Math.round(Number(amount) * UNITS[unit])
  const tooBig = kind === 'size' && size > config.file_tool_max_bytes

  const submit = async (event: FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    setCreated(null)
    try {
      setCreated(await api.createFile(path.trim(), kind === 'size' ? { size } : { text }))
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : null)
    } finally {
      setBusy(false)
    }
  }

  return (
    <section className="panel narrow" aria-labelledby="files-title">
      <h1 id="files-title">Create a test file</h1>
      <p className="hint">
        In <code>{config.storage_roots[0]}</code>, never overwriting; at most {formatBytes(config.file_tool_max_bytes)}.
      </p>
      <form onSubmit={submit}>
        <div className="field">
          <label htmlFor={ids.path}>Path in the storage root</label>
          <input
            id={ids.path}
            value={path}
            onChange={(event) => setPath(event.target.value)}
            required
            placeholder="tests/sample.bin"
            spellCheck={false}
          />
        </div>
        <fieldset className="row">
          <legend>Content</legend>
          <label className="choice">
            <input type="radio" name="kind" checked={kind === 'size'} onChange={() => setKind('size')} /> Random
            bytes
          </label>
          <label className="choice">
            <input type="radio" name="kind" checked={kind === 'text'} onChange={() => setKind('text')} /> Text
          </label>
        </fieldset>
        {kind === 'size' ? (
          <div className="row">
            <div className="field">
              <label htmlFor={ids.amount}>Size</label>
              <input
                id={ids.amount}
                type="number"
                min="0"
                step="any"
                value={amount}
                onChange={(event) => setAmount(event.target.value)}
                required
                aria-invalid={tooBig}
              />
            </div>
            <div className="field">
              <label htmlFor={ids.unit}>Unit</label>
              <select id={ids.unit} value={unit} onChange={(event) => setUnit(event.target.value as Unit)}>
                {Object.keys(UNITS).map((name) => (
                  <option key={name}>{name}</option>
                ))}
              </select>
            </div>
          </div>
        ) : (
          <div className="field">
            <label htmlFor={ids.text}>Text</label>
            <textarea id={ids.text} rows={5} value={text} onChange={(event) => setText(event.target.value)} />
          </div>
        )}
        {tooBig ? <p className="error">That is more than the tool creates ({formatBytes(config.file_tool_max_bytes)}).</p> : null}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy || tooBig}>
            {busy ? 'Creating…' : 'Create file'}
          </button>
        </div>
      </form>
      {error ? <ErrorMessage error={error} hint={config.error_codes[error.code]} /> : null}
      {created ? (
        <div className="notice" role="status">
          Created <code>{created.local_path_on_storage}</code> ({formatBytes(created.bytes)}).{' '}
          <button type="button" onClick={() => onStage(created.local_path_on_storage)}>
            Stage this file
          </button>
        </div>
      ) : null}
    </section>
  )
}
