import { useEffect, useState } from 'react'
import { api, ApiError, type DidFound, type DidInfo } from '../api'
import { formatBytes } from '../format'

const SEARCH_DELAY_MS = 300

interface Props {
  id: string
  value: string
  onChange: (value: string) => void
}

/** A Rucio DID as the source: names of the scope offered while typing, and what the DID holds once named. */
export function DidField({ id, value, onChange }: Props) {
  const [suggestions, setSuggestions] = useState<DidFound[]>([])
  const [info, setInfo] = useState<DidInfo | null>(null)
  const [problem, setProblem] = useState<string | null>(null)

  useEffect(() => {
    const text = value.trim()
    const colon = text.indexOf(':')
    setInfo(null)
    setProblem(null)
    if (colon < 1) {
      setSuggestions([])
      return
    }
    const scope = text.slice(0, colon)
    const name = text.slice(colon + 1)
    let current = true
    const timer = window.setTimeout(() => {
      api
        .searchDids(scope, `${name}*`)
        .then((page) => current && setSuggestions(page.dids))
        .catch(() => current && setSuggestions([]))
      if (!name) return
      api
        .describeDid(scope, name)
        .then((found) => current && setInfo(found))
        .catch((caught: unknown) => current && setProblem(caught instanceof ApiError ? caught.message : null))
    }, SEARCH_DELAY_MS)
    return () => {
      current = false
      window.clearTimeout(timer)
    }
  }, [value])

  return (
    <>
      <input
        id={id}
        list={`${id}-found`}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        required
        placeholder="scope:name"
        spellCheck={false}
        autoComplete="off"
      />
      <datalist id={`${id}-found`}>
        {suggestions.map((found) => (
          <option key={found.did} value={found.did}>
            {found.type.toLowerCase()}
          </option>
        ))}
      </datalist>
      {info ? (
        <p className="hint" role="status">
          {describe(info)}
        </p>
      ) : problem ? (
        <p className="hint" role="status">
          {problem}
        </p>
      ) : null}
    </>
  )
}

export function describe(info: DidInfo): string {
  const files = `${info.files} file${info.files === 1 ? '' : 's'}`
  const where = info.at_site ? 'at this site' : `${info.files_at_site} of ${info.files} at this site`
  return `${info.type.toLowerCase()} · ${files} · ${formatBytes(info.bytes)} · ${where}`
}
