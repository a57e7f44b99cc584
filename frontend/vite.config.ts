/// <reference types="vitest/config" />
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// The build goes into the Python package, which serves it at "/".
// `npm run dev` proxies the API to a service on port 8000 (scripts/serve).
const api = 'http://127.0.0.1:8000'

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: '../src/skao_staging/web',
    emptyOutDir: true,
  },
  server: {
    proxy: Object.fromEntries(['/api', '/stage_data', '/docs', '/openapi.json'].map((path) => [path, api])),
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
  },
})
