/** Pure helpers of the panel: names, destinations, lifetime choices, progress. */
import type { IJob, IMe, ISiteConfig } from './api';

const DAY = 86400;
const LIFETIME_DAYS = [1, 7, 14, 30, 90];

export function baseName(source: string): string {
  const tail = source.replace(/\/+$/, '').split('/').pop() ?? source;
  return tail.includes(':') && !source.includes('/') ? tail.split(':').slice(1).join(':') : tail;
}

/** The destination folder for jupyter_copy, relative to the site's workdir, from a file browser path. */
export function destinationFor(browserPath: string, workdir: string | null | undefined): string {
  const path = browserPath.replace(/^\/+|\/+$/g, '');
  if (!workdir) {
    return path;
  }
  if (path === workdir) {
    return '';
  }
  return path.startsWith(`${workdir}/`) ? path.slice(workdir.length + 1) : path;
}

export function lifetimeChoices(config: ISiteConfig, me: IMe | null): { label: string; seconds: number }[] {
  const { max_seconds, default_seconds, unlimited_for_everyone } = config.lifetimes;
  const choices = LIFETIME_DAYS.filter(days => days * DAY <= max_seconds).map(days => ({
    label: days === 1 ? '1 day' : `${days} days`,
    seconds: days * DAY
  }));
  if (default_seconds > 0 && !choices.some(choice => choice.seconds === default_seconds)) {
    choices.push({ label: `${Math.round(default_seconds / 3600)} hours`, seconds: default_seconds });
    choices.sort((a, b) => a.seconds - b.seconds);
  }
  if (unlimited_for_everyone || me?.is_admin) {
    choices.push({ label: 'until released', seconds: 0 });
  }
  return choices;
}

export function percent(job: IJob): number {
  if (job.status === 'succeeded' || job.status === 'skipped') {
    return 100;
  }
  return job.bytes ? Math.floor((100 * job.bytes_done) / job.bytes) : 0;
}


/** Where a jupyter_copy job's result is in the Jupyter server: the site's workdir, then its relative path. */
export function jupyterPath(job: IJob, workdir: string | null | undefined): string | null {
  if (job.method !== 'jupyter_copy' || !job.relative_path) {
    return null;
  }
  return workdir ? `${workdir}/${job.relative_path}` : job.relative_path;
}
