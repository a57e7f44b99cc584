import { useCallback, useEffect, useState } from 'react'
import { api, ApiError, token, type Me, type SiteConfig } from './api'
import { ErrorMessage } from './components/ErrorMessage'
import { TokenForm } from './components/TokenForm'
import { UsageBar } from './components/UsageBar'
import { FilesView } from './views/FilesView'
import { JobsView } from './views/JobsView'
import { LogsView } from './views/LogsView'
import { StageView } from './views/StageView'
import { UsageView } from './views/UsageView'

type ViewName = 'stage' | 'jobs' | 'logs' | 'files' | 'usage'

interface Session {
  config: SiteConfig
  me: Me
}

const USER_KEY = 'skao-staging-user'

function viewFromHash(): ViewName {
  const name = window.location.hash.replace(/^#\/?/, '')
  return name === 'jobs' || name === 'logs' || name === 'files' || name === 'usage' ? name : 'stage'
}

export default function App() {
  const [view, setView] = useState<ViewName>(viewFromHash)
  const [session, setSession] = useState<Session | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  const [pickedSource, setPickedSource] = useState<string | null>(null)
  const [stagingUser, setStagingUser] = useState(() => localStorage.getItem(USER_KEY) ?? '')
  const [holdingsChanges, setHoldingsChanges] = useState(0) // read the usage again when it grows
  const holdingsChanged = useCallback(() => setHoldingsChanges((count) => count + 1), [])

  const load = useCallback(async () => {
    setError(null)
    try {
      const [config, me] = await Promise.all([api.config(), api.me()])
      setSession({ config, me })
      if (me.username) setStagingUser(me.username)
    } catch (caught) {
      setSession(null)
      setError(caught instanceof ApiError ? caught : new ApiError(0, 'unknown', String(caught)))
    }
  }, [])

  useEffect(() => {
    void load()
    const onHash = () => setView(viewFromHash())
    window.addEventListener('hashchange', onHash)
    return () => window.removeEventListener('hashchange', onHash)
  }, [load])

  const signIn = (value: string | null) => {
    token.set(value)
    void load()
  }

  const views: { name: ViewName; label: string; shown: boolean }[] = [
    { name: 'stage', label: 'Stage', shown: true },
    { name: 'jobs', label: 'Jobs', shown: true },
    { name: 'logs', label: 'Logs', shown: session?.me.admin_tools ?? false },
    {
      name: 'files',
      label: 'Files',
      shown: (session?.config.file_tool_enabled ?? false) && (session?.me.admin_tools ?? false),
    },
    { name: 'usage', label: 'Usage', shown: session?.me.admin_tools ?? false },
  ]
  const current = views.find((item) => item.name === view && item.shown) ? view : 'stage'

  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true">◎</span>
          <span>SKA data staging</span>
        </div>
        <nav aria-label="Views">
          <ul className="tabs">
            {(session ? views : [])
              .filter((item) => item.shown)
              .map((item) => (
                <li key={item.name}>
                  <a href={`#/${item.name}`} aria-current={current === item.name ? 'page' : undefined}>
                    {item.label}
                  </a>
                </li>
              ))}
          </ul>
        </nav>
        <div className="who">
          {session && (session.me.authenticated || stagingUser) ? (
            <UsageBar
              username={session.me.authenticated ? null : stagingUser}
              refreshKey={`${current}:${holdingsChanges}`}
            />
          ) : null}
          {session?.me.username ? (
            <span title={session.me.groups.join(', ')}>
              Signed in as <strong>{session.me.username}</strong>
              {session.me.is_admin ? ' (admin)' : ''}
            </span>
          ) : session ? (
            <span className="muted">Development mode: no sign-in</span>
          ) : null}
          {session?.config.auth_mode === 'oidc' && token.get() ? (
            <button type="button" className="link" onClick={() => signIn(null)}>
              Sign out
            </button>
          ) : null}
        </div>
      </header>
      <main>
        {error ? (
          error.status === 401 ? (
            <TokenForm error={error} onSubmit={signIn} />
          ) : (
            <section className="panel">
              <ErrorMessage error={error} />
              <button type="button" onClick={() => void load()}>
                Try again
              </button>
            </section>
          )
        ) : !session ? (
          <p className="loading" role="status">
            Loading…
          </p>
        ) : current === 'stage' ? (
          <StageView
            config={session.config}
            me={session.me}
            initialSource={pickedSource}
            username={stagingUser}
            onUsername={(name) => {
              setStagingUser(name)
              localStorage.setItem(USER_KEY, name)
            }}
            onSubmitted={() => {
              window.location.hash = '#/jobs'
            }}
          />
        ) : current === 'jobs' ? (
          <JobsView
            config={session.config}
            me={session.me}
            defaultUser={stagingUser}
            onHoldingsChanged={holdingsChanged}
          />
        ) : current === 'logs' ? (
          <LogsView />
        ) : current === 'usage' ? (
          <UsageView />
        ) : (
          <FilesView
            config={session.config}
            onStage={(source) => {
              setPickedSource(source)
              window.location.hash = '#/stage'
            }}
          />
        )}
      </main>
      <footer className="footer muted">
        skao-staging {session?.config.version ?? ''} · <a href="/docs">API reference</a>
      </footer>
    </div>
  )
}
