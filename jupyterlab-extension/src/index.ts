/**
 * skao-staging-jupyterlab: the "Data staging" panel in JupyterLab's left sidebar, a command-palette
 * entry "Stage data…", and "Stage here" in the file browser's context menu of folders.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { LabIcon } from '@jupyterlab/ui-components';

import { StagingWidget } from './widget';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">
  <path class="jp-icon3" fill="#616161" d="M12 3 4 7v2h16V7zM5 10h2v7H5zm6 0h2v7h-2zm6 0h2v7h-2zM3 18h18v3H3z"/>
</svg>`;

export const stagingIcon = new LabIcon({ name: 'skao-staging:panel', svgstr: ICON_SVG });

const COMMANDS = { open: 'skao-staging:open', stageHere: 'skao-staging:stage-here' };

async function confirm(title: string, body: string): Promise<boolean> {
  const answer = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Release' })]
  });
  return answer.button.accept;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'skao-staging-jupyterlab:panel',
  description: 'Stage SKA archive data into this JupyterLab through the skao-staging service.',
  autoStart: true,
  requires: [ILabShell],
  optional: [IDefaultFileBrowser, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    browser: IDefaultFileBrowser | null,
    palette: ICommandPalette | null
  ) => {
    const open = async (path: string) => {
      const model = await app.serviceManager.contents.get(path, { content: false });
      const command = model.type === 'directory' ? 'filebrowser:go-to-path' : 'docmanager:open';
      await app.commands.execute(command, { path });
    };
    const widget = new StagingWidget(browser, { open: path => void open(path), confirm });
    widget.id = 'skao-staging-panel';
    widget.title.icon = stagingIcon;
    widget.title.caption = 'Data staging';
    shell.add(widget, 'left', { rank: 700 });

    app.commands.addCommand(COMMANDS.open, {
      label: 'Stage data…',
      caption: 'Open the Data staging panel',
      execute: () => shell.activateById(widget.id)
    });
    palette?.addItem({ command: COMMANDS.open, category: 'Data staging' });

    app.commands.addCommand(COMMANDS.stageHere, {
      label: 'Stage here',
      caption: 'Stage data into this folder',
      icon: stagingIcon,
      isVisible: () => browser?.selectedItems().next()?.value?.type === 'directory',
      execute: () => {
        const folder = browser?.selectedItems().next()?.value;
        if (folder && folder.type === 'directory') {
          widget.stageInto.emit(folder.path);
          shell.activateById(widget.id);
        }
      }
    });
    app.contextMenu.addItem({
      command: COMMANDS.stageHere,
      selector: '.jp-DirListing-item[data-isdir="true"]',
      rank: 20
    });
  }
};

export default plugin;
