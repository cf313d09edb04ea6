import { useEffect, useReducer } from 'react';
import { connect } from './hafalohaSocket.js';

const initial = {
  state: 'idle',
  url: null,
  reason: null,
  closeCode: null,
  protocol: null,
  confirmed: [],
  rejected: [],
  counters: { pings: 0, pongs: 0, heartbeats: 0 },
  lastPing: null,
  events: [],
  ignored: [],
};

function reducer(s, action) {
  switch (action.kind) {
    case 'change': {
      const { confirmed, rejected, ...rest } = action.patch;
      return {
        ...s,
        ...rest,
        confirmed: confirmed && !s.confirmed.includes(confirmed) ? [...s.confirmed, confirmed] : s.confirmed,
        rejected: rejected && !s.rejected.includes(rejected) ? [...s.rejected, rejected] : s.rejected,
      };
    }
    case 'event':
      return { ...s, events: [action.entry, ...s.events].slice(0, 50) };
    case 'ignored':
      return { ...s, ignored: [...s.ignored, action.info] };
    default:
      return s;
  }
}

const STATE_LABEL = {
  idle: 'Idle',
  connecting: 'Connecting…',
  connected: 'Live: connected',
  disconnected: 'Disconnected',
};

const TYPE_LABEL = { new_order: 'New order', order_updated: 'Order updated', low_stock: 'Low stock' };

function time(ms) {
  return new Date(ms).toLocaleTimeString('en-US', { hour12: false }) + `.${String(ms % 1000).padStart(3, '0')}`;
}

export default function App() {
  const [s, dispatch] = useReducer(reducer, initial);
  const params = new URLSearchParams(window.location.search);
  const restaurantId = params.get('restaurant_id');

  useEffect(() => {
    const stop = connect({
      api: params.get('api'),
      token: params.get('token'),
      restaurantId,
      heartbeatMs: Number(params.get('heartbeat')) || 30000,
      onChange: (patch) => dispatch({ kind: 'change', patch }),
      onEvent: (entry) => dispatch({ kind: 'event', entry }),
      onIgnored: (info) => dispatch({ kind: 'ignored', info }),
    });
    return stop;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  return (
    <main className="page">
      <header className="top">
        <div>
          <h1>Hafaloha · Admin dashboard</h1>
          <p className="sub">Restaurant #{restaurantId ?? '—'} · realtime over /cable (ferrocable)</p>
        </div>
        <div
          className={`status status-${s.state}`}
          data-testid="connection-status"
          data-state={s.state}
          data-reason={s.reason ?? ''}
          data-close-code={s.closeCode ?? ''}
        >
          <span className="dot" />
          {STATE_LABEL[s.state]}
          {s.state === 'disconnected' && (s.reason || s.closeCode) ? (
            <small>{[s.reason, s.closeCode ? `close ${s.closeCode}` : null].filter(Boolean).join(' · ')}</small>
          ) : null}
        </div>
      </header>

      <section className="panel meta">
        <div>
          <h2>Subscriptions</h2>
          <ul className="subs">
            {['OrderChannel', 'InventoryChannel'].map((ch) => (
              <li key={ch} data-testid={`sub-${ch}`} data-confirmed={s.confirmed.includes(ch) ? 'true' : 'false'}>
                {s.confirmed.includes(ch) ? '✓' : s.rejected.includes(ch) ? '✗' : '…'} {ch}
              </li>
            ))}
          </ul>
        </div>
        <div>
          <h2>Heartbeat</h2>
          <p data-testid="counters" data-pings={s.counters.pings} data-pongs={s.counters.pongs} data-heartbeats={s.counters.heartbeats}>
            {s.counters.pings} server ping(s) answered with pong · {s.counters.heartbeats} client ping(s) sent
          </p>
          <p className="muted">subprotocol: {s.protocol === null ? '—' : s.protocol === '' ? 'none' : s.protocol}</p>
        </div>
      </section>

      <section className="panel">
        <h2>Live events <span className="count" data-testid="event-count">{s.events.length}</span></h2>
        {s.events.length === 0 ? <p className="muted">Waiting for orders…</p> : null}
        <ol className="events" data-testid="events">
          {s.events.map((e) => (
            <li
              key={e.key}
              className={`event event-${e.type}`}
              data-testid="event"
              data-type={e.type}
              data-id={String(e.id)}
              data-received-at={e.receivedAt}
            >
              <span className="badge">{TYPE_LABEL[e.type]}</span>
              <strong data-testid="event-title">{e.title}</strong>
              <span className="detail" data-testid="event-detail">{e.detail}</span>
              <time>{time(e.receivedAt)}</time>
            </li>
          ))}
        </ol>
        <p className="muted" data-testid="ignored" data-count={s.ignored.length}>
          {s.ignored.length} other message(s) ignored
        </p>
      </section>
    </main>
  );
}
