import { render, screen } from '@testing-library/react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import App from './App'
import { config, developer, signedIn, stubFetch } from './test/fixtures'

afterEach(() => {
  vi.unstubAllGlobals()
  window.location.hash = ''
})

describe('App', () => {
  it('asks for a token when the service wants one', async () => {
    stubFetch({
      'GET /api/v1/config': { body: { ...config, auth_mode: 'oidc' } },
      'GET /api/v1/me': { status: 401, body: { detail: 'a bearer token is required', code: 'unauthenticated' } },
    })
    render(<App />)
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeInTheDocument()
    expect(screen.getByText('A bearer token is required')).toBeInTheDocument()
    expect(screen.queryByRole('link', { name: 'Jobs' })).not.toBeInTheDocument() // nothing to see before sign-in
  })

  it('offers the admin tools only to those they answer', async () => {
    stubFetch({ 'GET /api/v1/config': { body: config }, 'GET /api/v1/me': { body: signedIn } })
    render(<App />)
    expect(await screen.findByRole('heading', { name: 'Stage data' })).toBeInTheDocument()
    expect(screen.getByText(/Signed in as/)).toHaveTextContent('Signed in as ann')
    expect(screen.queryByRole('link', { name: 'Logs' })).not.toBeInTheDocument()
    expect(screen.queryByRole('link', { name: 'Files' })).not.toBeInTheDocument()
  })

  it('shows every view in development mode, with the file tool when enabled', async () => {
    stubFetch({ 'GET /api/v1/config': { body: config }, 'GET /api/v1/me': { body: developer } })
    render(<App />)
    for (const name of ['Stage', 'Jobs', 'Logs', 'Files']) {
      expect(await screen.findByRole('link', { name })).toBeInTheDocument()
    }
    expect(screen.getByRole('link', { name: 'Stage' })).toHaveAttribute('aria-current', 'page')
  })

  it('says when the service cannot be reached, and retries', async () => {
    vi.stubGlobal('fetch', vi.fn(() => Promise.reject(new TypeError('Failed to fetch'))))
    render(<App />)
    expect(await screen.findByRole('alert')).toHaveTextContent('cannot be reached')
    expect(screen.getByRole('button', { name: 'Try again' })).toBeInTheDocument()
  })
})
