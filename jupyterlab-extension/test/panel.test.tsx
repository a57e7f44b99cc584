import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import React from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { IJob } from '../src/api';

vi.mock('@jupyterlab/ui-components', () => {
  const icon = { react: () => null };
  return { fileIcon: icon, folderIcon: icon };
});

const api = vi.hoisted(() => ({
  config: vi.fn(),
  me: vi.fn(),
  storage: vi.fn(),
  searchDids: vi.fn(),
  stage: vi.fn(),
  cancel: vi.fn(),
  retry: vi.fn(),
  release: vi.fn(),
  job: vi.fn()
}));

vi.mock('../src/api', () => ({
  api,
  eventsUrl: () => '/skao-staging/api/events',
  FINAL: new Set(['succeeded', 'skipped', 'failed', 'cancelled'])
}));

import { StagingPanel } from '../src/panel';

class FakeEventSource {
  static last: FakeEventSource | null = null;
  listeners: ((event: MessageEvent) => void)[] = [];
  closed = false;
  constructor(readonly url: string) {
    FakeEventSource.last = this;
  }
  addEventListener(_name: string, listener: (event: MessageEvent) => void) {
    this.listeners.push(listener);
  }
  close() {
    this.closed = true;
  }
  emit(job: IJob) {
    this.listeners.forEach(listener => listener({ data: JSON.stringify(job) } as MessageEvent));
  }
}

function job(id: number, status: string, extra: Partial<IJob> = {}): IJob {
  return {
    job_id: id,
    request_id: 'r1',
    status,
    method: 'jupyter_copy',
    local_path_on_storage: 'obs/notes.txt',
    did: null,
    relative_path: 'incoming/notes.txt',
    bytes: 100,
    bytes_done: 0,
    error_code: null,
    error_reason: null,
    expires_at: null,
    released_at: null,
    ...extra
  };
}

function browserAt(path: string) {
  const slots: (() => void)[] = [];
  return {
    model: {
      path,
      pathChanged: { connect: (slot: () => void) => slots.push(slot), disconnect: vi.fn() },
      refresh: vi.fn(() => Promise.resolve())
    },
    move(to: string) {
      this.model.path = to;
      slots.forEach(slot => slot());
    }
  };
}

beforeEach(() => {
  vi.stubGlobal('EventSource', FakeEventSource);
  api.config.mockResolvedValue({
    methods: [
      { name: 'local_copy', description: '', accepts_directories: true },
      { name: 'direct_download', description: '', accepts_directories: true },
      { name: 'jupyter_copy', description: '', accepts_directories: true }
    ],
    dids: true,
    rucio_rse: 'SITE',
    lifetimes: { default_seconds: 14 * 86400, max_seconds: 90 * 86400, unlimited_for_everyone: false },
    jupyter_workdir: 'staged'
  });
  api.me.mockResolvedValue({ username: 'ada', is_admin: false });
  api.storage.mockImplementation((path: string) =>
    Promise.resolve(
      path === ''
        ? { path: '', parent: null, truncated: false, entries: [{ name: '/data', path: '/data', type: 'folder', size: null }] }
        : {
            path: '/data',
            parent: '',
            truncated: false,
            entries: [
              { name: 'run1', path: '/data/run1', type: 'folder', size: null },
              { name: 'notes.txt', path: '/data/notes.txt', type: 'file', size: 18 }
            ]
          }
    )
  );
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.clearAllMocks();
});

describe('StagingPanel', () => {
  it('stages the picked items into the folder open in the file browser, with the chosen lifetime', async () => {
    const browser = browserAt('staged/incoming');
    api.stage.mockResolvedValue({
      request_id: 'r1',
      items: [
        { index: 0, job: job(1, 'queued', { relative_path: 'incoming/deeper/run1' }), error: null },
        { index: 1, job: job(2, 'queued'), error: null }
      ]
    });
    api.job.mockImplementation((id: number) => Promise.resolve(job(id, 'running')));
    render(<StagingPanel browser={browser} />);
    expect(await screen.findByText('as ada')).toBeTruthy();
    act(() => browser.move('staged/incoming/deeper'));
    expect((screen.getByLabelText('destination folder') as HTMLInputElement).value).toBe('incoming/deeper');
    fireEvent.click(await screen.findByText('/data'));
    fireEvent.click(await screen.findByLabelText('pick run1'));
    fireEvent.click(screen.getByLabelText('pick notes.txt'));
    fireEvent.change(screen.getByLabelText('keep for'), { target: { value: String(7 * 86400) } });
    expect(screen.getByRole('option', { name: 'jupyter_copy' })).toBeTruthy();
    expect(screen.queryByRole('option', { name: 'direct_download' })).toBeNull();
    fireEvent.click(screen.getByText('Stage 2 items'));
    await waitFor(() => expect(api.stage).toHaveBeenCalled());
    expect(api.stage.mock.calls[0][0]).toEqual({
      lifetime: String(7 * 86400),
      items: [
        { method: 'jupyter_copy', local_path_on_storage: '/data/run1', relative_path: 'incoming/deeper/run1' },
        { method: 'jupyter_copy', local_path_on_storage: '/data/notes.txt', relative_path: 'incoming/deeper/notes.txt' }
      ]
    });
    await waitFor(() => expect(screen.getAllByText('running')).toHaveLength(2));
    act(() => FakeEventSource.last?.emit(job(2, 'succeeded', { bytes_done: 100 })));
    await waitFor(() => expect(screen.getByText('succeeded')).toBeTruthy());
    expect(browser.model.refresh).toHaveBeenCalledTimes(1);
    act(() => FakeEventSource.last?.emit(job(99, 'succeeded'))); // another job of the user: not shown
    expect(screen.queryAllByRole('listitem').filter(item => item.getAttribute('data-job') === '99')).toHaveLength(0);
  });

  it('shows each refused item with its reason and code, and cancels a running job', async () => {
    api.stage.mockResolvedValue({
      request_id: 'r2',
      items: [{ index: 0, job: job(5, 'failed'), error: { detail: 'there is no such file', code: 'source_not_found' } }]
    });
    render(<StagingPanel browser={browserAt('')} />);
    fireEvent.click(await screen.findByText('/data'));
    fireEvent.click(await screen.findByLabelText('pick notes.txt'));
    fireEvent.click(screen.getByText('Stage notes.txt'));
    expect(await screen.findByText('notes.txt: there is no such file (source_not_found)')).toBeTruthy();

    api.stage.mockResolvedValue({ request_id: 'r3', items: [{ index: 0, job: job(6, 'queued'), error: null }] });
    api.job.mockResolvedValue(job(6, 'running'));
    api.cancel.mockResolvedValue(job(6, 'cancelled'));
    fireEvent.click(screen.getByLabelText('pick notes.txt'));
    fireEvent.click(screen.getByText('Stage notes.txt'));
    fireEvent.click(await screen.findByText('Cancel'));
    await waitFor(() => expect(api.cancel).toHaveBeenCalledWith(6));
    expect(await screen.findByText('cancelled')).toBeTruthy();
  });

  it('says when the staging service is not available', async () => {
    api.config.mockRejectedValue(Object.assign(new Error('the staging service cannot be reached'), { code: 'x' }));
    render(<StagingPanel browser={null} />);
    expect(await screen.findByText('The staging service is not available: the staging service cannot be reached')).toBeTruthy();
  });

  it('opens, retries and releases jobs through JupyterLab, and stages into a folder asked for', async () => {
    const host = { open: vi.fn(), confirm: vi.fn(() => Promise.resolve(true)), stageInto: signal() };
    api.stage.mockResolvedValue({
      request_id: 'r4',
      items: [
        { index: 0, job: job(7, 'queued'), error: null },
        { index: 1, job: job(8, 'queued', { relative_path: 'incoming/other.txt' }), error: null }
      ]
    });
    api.job.mockImplementation((id: number) =>
      Promise.resolve(id === 7 ? job(7, 'succeeded') : job(8, 'failed', { relative_path: 'incoming/other.txt' }))
    );
    api.retry.mockResolvedValue(job(8, 'queued', { relative_path: 'incoming/other.txt' }));
    api.release.mockResolvedValue(job(7, 'succeeded', { released_at: '2026-11-25T00:00:00Z' }));
    render(<StagingPanel browser={browserAt('')} host={host} />);
    await screen.findByText('as ada');
    act(() => host.stageInto.emit('staged/incoming'));
    expect((screen.getByLabelText('destination folder') as HTMLInputElement).value).toBe('incoming');
    fireEvent.click(await screen.findByText('/data'));
    fireEvent.click(await screen.findByLabelText('pick notes.txt'));
    fireEvent.click(screen.getByText('Stage notes.txt'));
    fireEvent.click(await screen.findByTitle('Open'));
    expect(host.open).toHaveBeenCalledWith('staged/incoming/notes.txt');
    fireEvent.click(screen.getByText('Retry'));
    await waitFor(() => expect(api.retry).toHaveBeenCalledWith(8));
    fireEvent.click(screen.getByText('Release'));
    await waitFor(() => expect(api.release).toHaveBeenCalledWith(7));
    expect(host.confirm).toHaveBeenCalledWith('Release staged data', expect.stringContaining('notes.txt'));
    expect(await screen.findByText('released')).toBeTruthy();
  });

  it('searches DIDs by scope and name prefix, and stages a picked one by DID', async () => {
    api.searchDids.mockResolvedValue({ dids: [{ did: 'sky:obs-42', type: 'DATASET' }] });
    api.stage.mockResolvedValue({ request_id: 'r5', items: [{ index: 0, job: job(9, 'queued'), error: null }] });
    api.job.mockResolvedValue(job(9, 'queued'));
    render(<StagingPanel browser={browserAt('staged')} />);
    fireEvent.click(await screen.findByRole('tab', { name: 'Rucio DID' }));
    fireEvent.change(screen.getByPlaceholderText('scope'), { target: { value: 'sky' } });
    fireEvent.change(screen.getByPlaceholderText('name prefix'), { target: { value: 'obs' } });
    fireEvent.click(await screen.findByLabelText('pick sky:obs-42', {}, { timeout: 2000 }));
    expect(api.searchDids).toHaveBeenLastCalledWith('sky', 'obs*');
    fireEvent.click(screen.getByText('Stage obs-42'));
    await waitFor(() => expect(api.stage).toHaveBeenCalled());
    expect(api.stage.mock.calls[0][0].items).toEqual([
      { method: 'jupyter_copy', did: 'sky:obs-42', relative_path: 'obs-42' }
    ]);
  });
});

function signal() {
  const slots: ((sender: unknown, folder: string) => void)[] = [];
  return {
    connect: (slot: (sender: unknown, folder: string) => void) => slots.push(slot),
    disconnect: vi.fn(),
    emit: (folder: string) => slots.forEach(slot => slot(null, folder))
  };
}
