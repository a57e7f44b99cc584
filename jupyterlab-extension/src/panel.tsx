/**
 * The "Data staging" panel: pick storage items (or DIDs), stage them into the folder open in the file
 * browser, and follow each job live through the service's event stream.
 */
import { fileIcon, folderIcon } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useMemo, useState } from 'react';

import { api, eventsUrl, FINAL, IDidFound, IJob, IListing, IMe, ISiteConfig, StagingApiError } from './api';
import { baseName, destinationFor, jupyterPath, lifetimeChoices, percent } from './helpers';

/** What the panel needs of JupyterLab's file browser: the folder it shows, and a refresh. */
export interface IBrowser {
  model: {
    path: string;
    pathChanged: { connect: (slot: () => void) => unknown; disconnect: (slot: () => void) => unknown };
    refresh: () => Promise<void>;
  };
}

interface IPick {
  source: string; // a storage path or a DID
  did: boolean;
  name: string;
}

function StorageBrowser(props: {
  picks: IPick[];
  onToggle: (pick: IPick) => void;
  onError: (message: string) => void;
}): JSX.Element {
  const [listing, setListing] = useState<IListing | null>(null);
  const open = useCallback(
    (path: string) => {
      api.storage(path).then(setListing, (error: Error) => props.onError(error.message));
    },
    [props.onError]
  );
  useEffect(() => open(''), [open]);
  if (listing === null) {
    return <div className="skao-staging-muted">Loading the storage…</div>;
  }
  const picked = new Set(props.picks.map(pick => pick.source));
  return (
    <div className="skao-staging-browser">
      <div className="skao-staging-path">
        <button
          className="skao-staging-link"
          disabled={listing.parent === null}
          onClick={() => open(listing.parent ?? '')}
          title="Up one folder"
        >
          ↑
        </button>
        <span data-testid="storage-path">{listing.path || 'Storage roots'}</span>
      </div>
      <ul className="skao-staging-entries">
        {listing.entries.map(entry => (
          <li key={entry.path}>
            <input
              type="checkbox"
              aria-label={`pick ${entry.name}`}
              checked={picked.has(entry.path)}
              onChange={() => props.onToggle({ source: entry.path, did: false, name: entry.name })}
            />
            {entry.type === 'folder' ? (
              <button className="skao-staging-link" onClick={() => open(entry.path)}>
                <folderIcon.react tag="span" className="skao-staging-icon" />
                {entry.name}
              </button>
            ) : (
              <span>
                <fileIcon.react tag="span" className="skao-staging-icon" />
                {entry.name}
              </span>
            )}
          </li>
        ))}
      </ul>
      {listing.truncated && <div className="skao-staging-muted">More entries exist than are shown.</div>}
    </div>
  );
}

function DidSearch(props: { picks: IPick[]; onToggle: (pick: IPick) => void; onError: (m: string) => void }) {
  const [scope, setScope] = useState('');
  const [name, setName] = useState('');
  const [found, setFound] = useState<IDidFound[]>([]);
  useEffect(() => {
    if (!scope) {
      setFound([]);
      return;
    }
    const timer = window.setTimeout(() => {
      api.searchDids(scope, `${name}*`).then(
        page => setFound(page.dids),
        (error: Error) => props.onError(error.message)
      );
    }, 300);
    return () => window.clearTimeout(timer);
  }, [scope, name]);
  const picked = new Set(props.picks.map(pick => pick.source));
  return (
    <div className="skao-staging-dids">
      <input placeholder="scope" value={scope} onChange={event => setScope(event.target.value)} />
      <input placeholder="name prefix" value={name} onChange={event => setName(event.target.value)} />
      <ul className="skao-staging-entries">
        {found.map(item => (
          <li key={item.did}>
            <input
              type="checkbox"
              aria-label={`pick ${item.did}`}
              checked={picked.has(item.did)}
              onChange={() => props.onToggle({ source: item.did, did: true, name: baseName(item.did) })}
            />
            <span>
              {item.did} <span className="skao-staging-muted">{item.type.toLowerCase()}</span>
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}

interface IJobActions {
  onCancel: (job: IJob) => void;
  onRetry: (job: IJob) => void;
  onRelease: (job: IJob) => void;
  onOpen: ((job: IJob) => void) | null; // null: the result is not in this Jupyter server
}

function JobRow(props: { job: IJob } & IJobActions): JSX.Element {
  const { job, onOpen } = props;
  const name = baseName(job.relative_path ?? job.local_path_on_storage ?? job.did ?? String(job.job_id));
  const staged = (job.status === 'succeeded' || job.status === 'skipped') && !job.released_at;
  return (
    <li className={`skao-staging-job skao-staging-${job.status}`} data-job={job.job_id}>
      <div className="skao-staging-job-line">
        {staged && onOpen ? (
          <button className="skao-staging-link skao-staging-job-name" title="Open" onClick={() => onOpen(job)}>
            {name}
          </button>
        ) : (
          <span className="skao-staging-job-name">{name}</span>
        )}
        <span className="skao-staging-status">{job.released_at ? 'released' : job.status}</span>
        {!FINAL.has(job.status) && (
          <button className="skao-staging-link" onClick={() => props.onCancel(job)}>
            Cancel
          </button>
        )}
        {(job.status === 'failed' || job.status === 'cancelled') && (
          <button className="skao-staging-link" onClick={() => props.onRetry(job)}>
            Retry
          </button>
        )}
        {staged && job.status === 'succeeded' && (
          <button className="skao-staging-link" onClick={() => props.onRelease(job)}>
            Release
          </button>
        )}
      </div>
      <progress max={100} value={percent(job)} aria-label={`progress of ${name}`} />
      {job.error_code && (
        <div className="skao-staging-error">
          {job.error_reason} ({job.error_code})
        </div>
      )}
    </li>
  );
}

type Slot = (sender: unknown, folder: string) => void;

/** What the panel asks of JupyterLab: open a staged path, confirm a step; requests to stage into a folder. */
export interface IPanelHost {
  open: (path: string) => void;
  confirm: (title: string, body: string) => Promise<boolean>;
  stageInto?: { connect: (slot: Slot) => unknown; disconnect: (slot: Slot) => unknown };
}

const PLAIN_HOST: IPanelHost = {
  open: () => undefined,
  confirm: (title, body) => Promise.resolve(window.confirm(`${title}\n${body}`))
};

export function StagingPanel(props: { browser: IBrowser | null; host?: IPanelHost }): JSX.Element {
  const { browser } = props;
  const host = props.host ?? PLAIN_HOST;
  const [config, setConfig] = useState<ISiteConfig | null>(null);
  const [me, setMe] = useState<IMe | null>(null);
  const [source, setSource] = useState<'storage' | 'did'>('storage');
  const [picks, setPicks] = useState<IPick[]>([]);
  const [method, setMethod] = useState('jupyter_copy');
  const [lifetime, setLifetime] = useState<number | null>(null);
  const [browserPath, setBrowserPath] = useState(browser?.model.path ?? '');
  const [typed, setTyped] = useState<string | null>(null); // a destination the user typed wins
  const [messages, setMessages] = useState<string[]>([]);
  const [jobs, setJobs] = useState<Map<number, IJob>>(new Map());
  const [busy, setBusy] = useState(false);

  const report = useCallback((message: string) => setMessages(shown => [...shown.slice(-4), message]), []);

  useEffect(() => {
    api.config().then(
      site => {
        setConfig(site);
        const names = site.methods.map(one => one.name);
        setMethod(names.includes('jupyter_copy') ? 'jupyter_copy' : (names.find(n => n !== 'direct_download') ?? ''));
        setLifetime(site.lifetimes.default_seconds);
      },
      (error: StagingApiError) => report(`The staging service is not available: ${error.message}`)
    );
    api.me().then(setMe, () => undefined);
  }, [report]);

  useEffect(() => {
    if (!browser) {
      return;
    }
    const follow = () => setBrowserPath(browser.model.path);
    browser.model.pathChanged.connect(follow);
    return () => {
      browser.model.pathChanged.disconnect(follow);
    };
  }, [browser]);

  const update = useCallback(
    (job: IJob) => {
      setJobs(known => {
        const before = known.get(job.job_id);
        if (before === undefined) {
          return known;
        }
        if ((job.status === 'succeeded' || job.status === 'skipped') && before.status !== job.status) {
          void browser?.model.refresh();
        }
        return new Map(known).set(job.job_id, job);
      });
    },
    [browser]
  );

  useEffect(() => {
    const events = new EventSource(eventsUrl());
    events.addEventListener('job', event => update(JSON.parse((event as MessageEvent).data) as IJob));
    return () => events.close();
  }, [update]);

  const workdir = config?.jupyter_workdir;

  useEffect(() => {
    const requests = host.stageInto;
    if (!requests) {
      return;
    }
    const stageInto = (_: unknown, folder: string) => setTyped(destinationFor(folder, workdir));
    requests.connect(stageInto);
    return () => {
      requests.disconnect(stageInto);
    };
  }, [host, workdir]);
  const destination = typed ?? destinationFor(browserPath, method === 'jupyter_copy' ? workdir : null);
  const choices = useMemo(() => (config ? lifetimeChoices(config, me) : []), [config, me]);
  const methods = (config?.methods ?? []).filter(one => one.name !== 'direct_download');

  const toggle = useCallback((pick: IPick) => {
    setPicks(current =>
      current.some(one => one.source === pick.source)
        ? current.filter(one => one.source !== pick.source)
        : [...current, pick]
    );
  }, []);

  const stage = async () => {
    setBusy(true);
    const folder = destination.replace(/^\/+|\/+$/g, '');
    const items = picks.map(pick => ({
      method,
      [pick.did ? 'did' : 'local_path_on_storage']: pick.source,
      relative_path: folder ? `${folder}/${pick.name}` : pick.name
    }));
    try {
      const accepted = await api.stage({ items, ...(lifetime === null ? {} : { lifetime: String(lifetime) }) });
      const started = accepted.items.filter(item => !item.error).map(item => item.job);
      for (const item of accepted.items) {
        if (item.error) {
          report(`${baseName(items[item.index]?.relative_path ?? '')}: ${item.error.detail} (${item.error.code})`);
        }
      }
      setJobs(known => {
        const followed = new Map(known);
        started.forEach(job => followed.set(job.job_id, followed.get(job.job_id) ?? job));
        return followed;
      });
      setPicks([]);
      for (const item of accepted.items) {
        if (!item.error) {
          api.job(item.job.job_id).then(update, () => undefined); // it may have ended before the stream saw it
        }
      }
    } catch (error) {
      const refusal = error as StagingApiError;
      report(`${refusal.message} (${refusal.code})`);
    } finally {
      setBusy(false);
    }
  };

  const refused = (error: StagingApiError) => report(`${error.message} (${error.code})`);
  const actions: IJobActions = {
    onCancel: job => void api.cancel(job.job_id).then(update, refused),
    onRetry: job => void api.retry(job.job_id).then(update, refused),
    onRelease: job => {
      const name = baseName(job.relative_path ?? '');
      void host.confirm('Release staged data', `Remove ${name} now? What changed since it was staged is kept.`).then(yes => {
        if (yes) {
          api.release(job.job_id).then(update, refused);
        }
      });
    },
    onOpen: null
  };

  return (
    <div className="skao-staging-panel">
      <header>
        <h2>Data staging</h2>
        {me?.username && <span className="skao-staging-muted">as {me.username}</span>}
      </header>
      {config?.dids && (
        <div className="skao-staging-tabs" role="tablist">
          <button role="tab" aria-selected={source === 'storage'} onClick={() => setSource('storage')}>
            Storage
          </button>
          <button role="tab" aria-selected={source === 'did'} onClick={() => setSource('did')}>
            Rucio DID
          </button>
        </div>
      )}
      {source === 'storage' ? (
        <StorageBrowser picks={picks} onToggle={toggle} onError={report} />
      ) : (
        <DidSearch picks={picks} onToggle={toggle} onError={report} />
      )}
      <label>
        Into folder
        <input
          aria-label="destination folder"
          value={destination}
          onChange={event => setTyped(event.target.value)}
          placeholder="(the top folder)"
        />
      </label>
      {method === 'jupyter_copy' && workdir ? (
        <div className="skao-staging-muted">below {workdir}/ in your Jupyter server</div>
      ) : null}
      <label>
        Method
        <select aria-label="method" value={method} onChange={event => setMethod(event.target.value)}>
          {methods.map(one => (
            <option key={one.name} value={one.name} title={one.description}>
              {one.name}
            </option>
          ))}
        </select>
      </label>
      {choices.length > 0 && (
        <label>
          Keep for
          <select
            aria-label="keep for"
            value={String(lifetime)}
            onChange={event => setLifetime(Number(event.target.value))}
          >
            {choices.map(choice => (
              <option key={choice.seconds} value={String(choice.seconds)}>
                {choice.label}
              </option>
            ))}
          </select>
        </label>
      )}
      <button className="skao-staging-stage" disabled={busy || picks.length === 0 || !method} onClick={stage}>
        {picks.length === 0 ? 'Stage' : picks.length === 1 ? `Stage ${picks[0].name}` : `Stage ${picks.length} items`}
      </button>
      {messages.length > 0 && (
        <ul className="skao-staging-messages" aria-live="polite">
          {messages.map((message, index) => (
            <li key={index} className="skao-staging-error">
              {message}
            </li>
          ))}
        </ul>
      )}
      <ul className="skao-staging-jobs">
        {[...jobs.values()].reverse().map(job => (
          <JobRow
            key={job.job_id}
            job={job}
            {...actions}
            onOpen={jupyterPath(job, workdir) === null ? null : one => host.open(jupyterPath(one, workdir) ?? '')}
          />
        ))}
      </ul>
    </div>
  );
}
