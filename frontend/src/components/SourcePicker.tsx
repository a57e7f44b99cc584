import { useEffect, useRef, useState } from 'react'
import { api, ApiError, type StorageListing } from '../api'
import { formatBytes } from '../format'
import { ErrorMessage } from './ErrorMessage'
import { Icon } from './Icon'

const FILTER_FROM = 20 // folders with more entries get a filter box

interface Props {
  /** Whether a folder may be chosen (methods that stage folders). */
  folders: boolean
  onPick: (path: string) => void
  onClose: () => void
}

/** Browses the storage roots and picks a file (or a folder) as a source. */
export function SourcePicker({ folders, onPick, onClose }: Props) {
  const [path, setPath] = useState('')
  const [listing, setListing] = useState<StorageListing | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  const [filter, setFilter] = useState('')
  const [singleRoot, setSingleRoot] = useState(false)
  const list = useRef<HTMLUListElement>(null)
  const needle = filter.trim().toLowerCase()
  const shown = listing?.entries.filter((entry) => entry.name.toLowerCase().includes(needle)) ?? []

  // keyboard users land on the first entry of each folder they open
  useEffect(() => {
    list.current?.querySelector('button')?.focus()
  }, [listing])

  useEffect(() => {
    let current = true
    setError(null)
    setFilter('')
    api
      .browse(path)
      .then((found) => {
        if (!current) return
        const onlyRoot = found.path === '' && found.entries.length === 1
        if (found.path === '') setSingleRoot(onlyRoot)
        if (onlyRoot) setPath(found.entries[0].path) // one storage root: open it straight away
        else setListing(found)
      })
      .catch((caught: unknown) => {
        if (current) setError(caught instanceof ApiError ? caught : null)
      })
    return () => {
      current = false
    }
  }, [path])

  const atRoot = listing?.parent === '' // a storage root itself: never staged whole from here
  const canGoUp = listing !== null && listing.parent !== null && !(atRoot && singleRoot)

  return (
    <div className="picker" role="dialog" aria-label="Choose a source" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <div className="picker-head">
        <button
          type="button"
          onClick={() => setPath(listing?.parent ?? '')}
          disabled={!canGoUp}
          aria-label="Up one folder"
        >
          ↑ Up
        </button>
        <code className="picker-path">{listing?.path || 'Storage roots'}</code>
        {folders && listing && listing.path && !atRoot ? (
          <button type="button" onClick={() => onPick(listing.path)}>
            Choose this folder
          </button>
        ) : null}
        <button type="button" className="link" onClick={onClose}>
          Close
        </button>
      </div>
      {error ? <ErrorMessage error={error} /> : null}
      {listing && listing.entries.length > FILTER_FROM ? (
        <input
          type="search"
          className="picker-filter"
          aria-label="Filter this folder"
          placeholder={`Filter ${listing.entries.length} entries by name`}
          value={filter}
          onChange={(event) => setFilter(event.target.value)}
        />
      ) : null}
      {!listing && !error ? <p role="status">Loading…</p> : null}
      {listing && listing.entries.length > 0 && shown.length === 0 ? (
        <p className="empty">Nothing here matches “{filter}”.</p>
      ) : null}
      {listing && listing.entries.length === 0 ? <p className="empty">This folder is empty.</p> : null}
      {shown.length > 0 ? (
        <ul className="entries" ref={list}>
          {shown.map((entry) => (
            <li key={entry.path}>
              {entry.type === 'folder' ? (
                <button type="button" className="entry" onClick={() => setPath(entry.path)}>
                  <Icon kind="folder" /> {entry.name}
                </button>
              ) : (
                <button type="button" className="entry" onClick={() => onPick(entry.path)}>
                  <Icon kind="file" /> {entry.name}
                  <span className="muted size">{formatBytes(entry.size)}</span>
                </button>
              )}
            </li>
          ))}
        </ul>
      ) : null}
      {listing?.truncated ? <p className="muted">Only the first {listing.entries.length} entries are shown.</p> : null}
    </div>
  )
}
