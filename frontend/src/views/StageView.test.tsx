import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { config, developer, job, signedIn, stubFetch } from '../test/fixtures'
import { StageView } from './StageView'

afterEach(() => vi.unstubAllGlobals())

function renderStage(me = developer, onSubmitted = vi.fn()) {
  const onUsername = vi.fn()
  render(
    <StageView
      config={config}
      me={me}
      initialSource={null}
      username={me.username ?? 'ann'}
      onUsername={onUsername}
      onSubmitted={onSubmitted}
    />,
  )
  return { onSubmitted, onUsername }
}

describe('StageView', () => {
  it('queues several items in one request and names the destination after the source', async () => {
    const calls = stubFetch({
      'POST /api/v1/jobs': {
        status: 202,
        body: { request_id: 'r9', items: [{ index: 0, job: job(), error: null }, { index: 1, job: job(), error: null }] },
      },
    })
    const { onSubmitted } = renderStage()
    await userEvent.type(screen.getByLabelText('Source on storage'), '/data/archive/a.fits')
    expect(screen.getByLabelText('Destination in the user area')).toHaveValue('a.fits')
    await userEvent.click(screen.getByRole('button', { name: '+ Add item' }))
    const sources = screen.getAllByLabelText('Source on storage')
    await userEvent.type(sources[1], 'obs/b.ms')
    await userEvent.click(screen.getByRole('button', { name: 'Stage 2 items' }))
    expect(calls[0].body).toEqual({
      username: 'ann',
      items: [
        { method: 'local_copy', local_path_on_storage: '/data/archive/a.fits', relative_path: 'a.fits' },
        { method: 'local_copy', local_path_on_storage: 'obs/b.ms', relative_path: 'b.ms' },
      ],
    })
    expect(onSubmitted).toHaveBeenCalledWith('r9')
  })

  it('shows a refused item as a sentence with its meaning', async () => {
    stubFetch({
      'POST /api/v1/jobs': {
        status: 202,
        body: {
          request_id: 'r1',
          items: [{ index: 0, job: job(), error: { detail: "source 'nope' does not exist", code: 'source_not_found' } }],
        },
      },
    })
    const { onSubmitted } = renderStage()
    await userEvent.type(screen.getByLabelText('Source on storage'), 'nope')
    await userEvent.click(screen.getByRole('button', { name: 'Stage' }))
    const alert = await screen.findByRole('alert')
    expect(alert).toHaveTextContent("Item 1: source 'nope' does not exist")
    expect(alert).toHaveTextContent('The source does not exist.')
    expect(alert).not.toHaveTextContent('{')
    expect(onSubmitted).not.toHaveBeenCalled()
  })

  it('takes the username from the sign-in', () => {
    renderStage(signedIn)
    const field = screen.getByLabelText('Username')
    expect(field).toHaveValue('ann')
    expect(field).toHaveAttribute('readonly')
  })

  it('asks only for the source when downloading, and names a folder\'s ZIP after it', async () => {
    stubFetch({
      'GET /api/v1/storage': {
        body: { path: '/data/archive/obs', parent: '/data/archive', truncated: false, entries: [
          { name: 'x', path: '/data/archive/obs/x', type: 'file', size: 1, modified: null },
        ] },
      },
    })
    renderStage()
    await userEvent.selectOptions(screen.getByLabelText('Method'), 'direct_download')
    expect(screen.queryByLabelText('Destination in the user area')).not.toBeInTheDocument()
    expect(screen.queryByRole('button', { name: '+ Add item' })).not.toBeInTheDocument()
    await userEvent.type(screen.getByLabelText('Source on storage'), '/data/archive/obs')
    await userEvent.click(screen.getByRole('button', { name: 'Download' }))
    expect(await screen.findByRole('status')).toHaveTextContent('Downloading obs.zip')
  })

  it('browses the storage and picks a file', async () => {
    stubFetch({
      'GET /api/v1/storage': {
        body: { path: '/data/archive', parent: '', truncated: false, entries: [
          { name: 'obs', path: '/data/archive/obs', type: 'folder', size: null, modified: null },
          { name: 'a.fits', path: '/data/archive/a.fits', type: 'file', size: 2048, modified: null },
        ] },
      },
    })
    renderStage()
    await userEvent.click(screen.getByRole('button', { name: 'Browse…' }))
    const dialog = await screen.findByRole('dialog', { name: 'Choose a source' })
    await userEvent.click(await within(dialog).findByRole('button', { name: /a\.fits/ }))
    expect(screen.getByLabelText('Source on storage')).toHaveValue('/data/archive/a.fits')
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument()
  })

  it('stages a Rucio DID: names offered while typing, what it holds shown, the item sent as a did', async () => {
    const calls = stubFetch({
      'GET /api/v1/dids': { body: { dids: [{ did: 'sky:survey', type: 'DATASET' }], limit: 20, offset: 0 } },
      'GET /api/v1/dids/sky/survey': {
        body: { did: 'sky:survey', type: 'DATASET', files: 2, bytes: 2048, files_at_site: 2, at_site: true },
      },
      'POST /api/v1/jobs': { status: 202, body: { request_id: 'r7', items: [{ index: 0, job: job(), error: null }] } },
    })
    const onSubmitted = vi.fn()
    render(
      <StageView
        config={{ ...config, dids: true, rucio_rse: 'SITE_LOCAL' }}
        me={developer}
        initialSource={null}
        username="ann"
        onUsername={vi.fn()}
        onSubmitted={onSubmitted}
      />,
    )
    await userEvent.click(screen.getByRole('radio', { name: /Rucio DIDs/ }))
    await userEvent.type(screen.getByLabelText('Rucio DID'), 'sky:survey')
    expect(await screen.findByText('dataset · 2 files · 2.0 KiB · at this site')).toBeInTheDocument()
    expect(document.querySelector('datalist option')).toHaveValue('sky:survey')
    expect(screen.getByLabelText('Destination in the user area')).toHaveValue('survey')
    await userEvent.click(screen.getByRole('checkbox', { name: /ask Rucio to replicate them here/ }))
    await userEvent.click(screen.getByRole('button', { name: 'Stage' }))
    const submitted = calls.find((call) => call.method === 'POST')
    expect(submitted?.body).toEqual({
      username: 'ann',
      items: [{ method: 'local_copy', did: 'sky:survey', relative_path: 'survey', request_replication: true }],
    })
    expect(onSubmitted).toHaveBeenCalledWith('r7')
  })

  it('asks for a lifetime from the site\'s choices and sends it with the request', async () => {
    const calls = stubFetch({
      'POST /api/v1/jobs': { status: 202, body: { request_id: 'r2', items: [{ index: 0, job: job(), error: null }] } },
    })
    renderStage(signedIn)
    const keep = screen.getByLabelText('Keep for')
    expect(within(keep).getAllByRole('option').map((option) => option.textContent)).toEqual([
      '14 days (default)',
      '1 day',
      '7 days',
      '30 days',
      '90 days',
    ]) // no "until released": not an admin
    await userEvent.selectOptions(keep, '30 days')
    await userEvent.type(screen.getByLabelText('Source on storage'), 'a.fits')
    await userEvent.click(screen.getByRole('button', { name: 'Stage' }))
    expect(calls[0].body).toMatchObject({ lifetime: String(30 * 86400) })
  })
})
