/** The panel as a JupyterLab widget (a ReactWidget for the left sidebar). */
import { ReactWidget } from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';
import React from 'react';

import { IBrowser, IPanelHost, StagingPanel } from './panel';

export class StagingWidget extends ReactWidget {
  /** Emitted with a folder of the Jupyter server that the next staging should go into. */
  readonly stageInto = new Signal<this, string>(this);
  private readonly host: IPanelHost;

  constructor(
    private readonly browser: IBrowser | null,
    host: Omit<IPanelHost, 'stageInto'>
  ) {
    super();
    this.host = { ...host, stageInto: this.stageInto };
    this.addClass('skao-staging-widget');
  }

  render(): JSX.Element {
    return <StagingPanel browser={this.browser} host={this.host} />;
  }
}
