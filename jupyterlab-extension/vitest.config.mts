import { defineConfig } from 'vitest/config';

// Unit tests of the panel's components in jsdom; JupyterLab's own packages are replaced in each test.
export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.{ts,tsx}']
  }
});
