import { render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { stubFetch } from '../test/fixtures'
import { SourcePicker } from './SourcePicker'

afterEach(() => vi.unstubAllGlobals())

const entry = (name: string, type: 'file' | 'folder' = 'file') => ({
  name,
  path: `/data/archive/${name}`,
  type,
  size: type === 'file' ? 1 : null,
  modified: null,
})

describe('SourcePicker', () => {
  it('filters a large folder by name and says when nothing matches', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `obs-${String(i).padStart(2, '0')}.ms`)
    stubFetch({
      'GET /api/v1/storage': {
        body: { path: '/data/archive', parent: '', truncated: false, entries: names.map((n) => entry(n, 'folder')) },
      },
    })
    render(<SourcePicker folders onPick={vi.fn()} onClose={vi.fn()} />)
    const dialog = await screen.findByRole('dialog', { name: 'Choose a source' })
    expect(await within(dialog).findAllByRole('button', { name: /obs-/ })).toHaveLength(30)
    // keyboard users start on the first entry (focus moves in an effect, after the entries render)
    await waitFor(() => expect(within(dialog).getAllByRole('button', { name: /obs-/ })[0]).toHaveFocus())
    await userEvent.type(within(dialog).getByRole('searchbox', { name: 'Filter this folder' }), 'OBS-2')
    expect(within(dialog).getAllByRole('button', { name: /obs-/ }).map((b) => b.textContent)).toEqual(
      Array.from({ length: 10 }, (_, i) => ` obs-2${i}.ms`),
    )
    await userEvent.clear(within(dialog).getByRole('searchbox'))
    await userEvent.type(within(dialog).getByRole('searchbox'), 'nothing')
    expect(within(dialog).getByText('Nothing here matches “nothing”.')).toBeInTheDocument()
  })

  it('offers no filter for a small folder, picks a folder when allowed, closes on Escape', async () => {
    stubFetch({
      'GET /api/v1/storage': {
        body: { path: '/data/archive/run1', parent: '/data/archive', truncated: false, entries: [entry('a.fits')] },
      },
    })
    const onPick = vi.fn()
    const onClose = vi.fn()
    render(<SourcePicker folders onPick={onPick} onClose={onClose} />)
    await screen.findByRole('button', { name: /a\.fits/ })
    expect(screen.queryByRole('searchbox')).not.toBeInTheDocument()
    await userEvent.click(screen.getByRole('button', { name: 'Choose this folder' }))
    expect(onPick).toHaveBeenCalledWith('/data/archive/run1')
    await userEvent.keyboard('{Escape}')
    expect(onClose).toHaveBeenCalled()
  })

  it('at a storage root offers neither Up (one root) nor choosing the whole root', async () => {
    stubFetch({
      'GET /api/v1/storage': (url: URL) =>
        url.searchParams.get('path')
          ? { body: { path: '/data/archive', parent: '', truncated: false, entries: [entry('obs', 'folder')] } }
          : { body: { path: '', parent: null, truncated: false, entries: [entry('archive', 'folder')] } },
    })
    render(<SourcePicker folders onPick={vi.fn()} onClose={vi.fn()} />)
    await screen.findByRole('button', { name: /obs/ })
    expect(screen.getByRole('button', { name: 'Up one folder' })).toBeDisabled()
    expect(screen.queryByRole('button', { name: 'Choose this folder' })).not.toBeInTheDocument()
  })

  it('goes up from a root to the list of roots when there are several', async () => {
    stubFetch({
      'GET /api/v1/storage': (url: URL) =>
        url.searchParams.get('path')
          ? { body: { path: '/data/archive', parent: '', truncated: false, entries: [entry('obs', 'folder')] } }
          : { body: { path: '', parent: null, truncated: false, entries: [entry('archive', 'folder'), entry('legacy', 'folder')] } },
    })
    render(<SourcePicker folders onPick={vi.fn()} onClose={vi.fn()} />)
    await userEvent.click(await screen.findByRole('button', { name: /archive/ }))
    await screen.findByRole('button', { name: /obs/ })
    expect(screen.getByRole('button', { name: 'Up one folder' })).toBeEnabled()
    expect(screen.queryByRole('button', { name: 'Choose this folder' })).not.toBeInTheDocument()
  })
})
