/**
 * skao-staging-jupyterlab: the "Data staging" panel in JupyterLab's left sidebar.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { LabIcon } from '@jupyterlab/ui-components';

import { StagingWidget } from './widget';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">
  <path class="jp-icon3" fill="#616161" d="M12 3 4 7v2h16V7zM5 10h2v7H5zm6 0h2v7h-2zm6 0h2v7h-2zM3 18h18v3H3z"/>
</svg>`;

export const stagingIcon = new LabIcon({ name: 'skao-staging:panel', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'skao-staging-jupyterlab:panel',
  description: 'Stage SKA archive data into this JupyterLab through the skao-staging service.',
  autoStart: true,
  requires: [ILabShell],
  optional: [IDefaultFileBrowser],
  activate: (app: JupyterFrontEnd, shell: ILabShell, browser: IDefaultFileBrowser | null) => {
    const widget = new StagingWidget(browser);
    widget.id = 'skao-staging-panel';
    widget.title.icon = stagingIcon;
    widget.title.caption = 'Data staging';
    shell.add(widget, 'left', { rank: 700 });
  }
};

export default plugin;
