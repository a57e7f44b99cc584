/** Folder and file icons drawn inline (no icon font, no emoji that a system may not have). */
export function Icon({ kind }: { kind: 'folder' | 'file' }) {
  return (
    <svg className="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false">
      {kind === 'folder' ? (
        <path d="M1.5 3.5h4l1.5 1.5h7.5v8h-13z" fill="#e5a50a" stroke="#9a6700" />
      ) : (
        <path d="M3.5 1.5h6l3 3v10h-9z M9.5 1.5v3h3" fill="#fff" stroke="#5b6675" />
      )}
    </svg>
  )
}
