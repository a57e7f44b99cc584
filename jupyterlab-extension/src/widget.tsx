/** The panel as a JupyterLab widget (a ReactWidget for the left sidebar). */
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { IBrowser, StagingPanel } from './panel';

export class StagingWidget extends ReactWidget {
  constructor(private readonly browser: IBrowser | null) {
    super();
    this.addClass('skao-staging-widget');
  }

  render(): JSX.Element {
    return <StagingPanel browser={this.browser} />;
  }
}
