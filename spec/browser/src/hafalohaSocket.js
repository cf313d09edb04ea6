// A stand-in for Hafaloha's WebSocketManager.ts (hafaloha.md §7): a bare browser WebSocket, no
// subprotocol, no Action Cable library.
//
//   - URL: API base (http -> ws) or the page's own host, then
//     /cable?token=<token>&restaurant_id=<id>, both URI-encoded. No token or id: no connection.
//   - onopen: four subscribes, OrderChannel, order_channel_<id>, InventoryChannel,
//     inventory_channel_<id> (the two stream-named ones are unknown channels; the server stays
//     silent about them).
//   - {"type":"ping"} frames are answered with {"type":"pong"}; every `heartbeatMs` (30 s in
//     Hafaloha) the client sends {"type":"ping"} itself.
//   - OrderChannel new_order / order_updated and InventoryChannel low_stock are shown; anything
//     else is counted as ignored.
//
// Differences on purpose, so the test sees exactly what the server sends: the page reports
// "connected" on the server's welcome (Hafaloha flips on onopen, before authentication has been
// decided), and it applies none of Hafaloha's client-side filters (admin context, 1 h dedupe,
// payload restaurant_id check), which would hide a misrouted broadcast. Every raw frame in and out
// is kept on window.__cable for the test.

export function cableUrl({ api, token, restaurantId }) {
  let base;
  if (api) {
    base = api.replace(/^http/, 'ws');
  } else {
    base = `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}`;
  }
  return `${base.replace(/\/$/, '')}/cable?token=${encodeURIComponent(token)}&restaurant_id=${encodeURIComponent(restaurantId)}`;
}

function identifierFor(channel, restaurantId) {
  const id = /^\d+$/.test(String(restaurantId)) ? Number(restaurantId) : restaurantId;
  return channel.endsWith('Channel')
    ? JSON.stringify({ channel, restaurant_id: id })
    : JSON.stringify({ channel });
}

function describe(channel, message, receivedAt) {
  if (channel === 'OrderChannel' && (message.type === 'new_order' || message.type === 'order_updated') && message.order) {
    const o = message.order;
    const items = Array.isArray(o.items) ? o.items.map((i) => `${i.name} ×${i.quantity}`).join(', ') : '';
    return {
      key: `${message.type}_${o.id}_${receivedAt}`,
      type: message.type,
      channel,
      id: o.id,
      title: message.type === 'new_order' ? `New order #${o.order_number || o.id}` : `Order #${o.order_number || o.id} updated`,
      detail: [o.status, typeof o.total === 'number' ? `$${o.total.toFixed(2)}` : null, items, o.contact_name]
        .filter(Boolean).join(' · '),
      receivedAt,
    };
  }
  if (channel === 'InventoryChannel' && message.type === 'low_stock') {
    const item = message.item || message;
    return {
      key: `low_stock_${item.id}_${receivedAt}`,
      type: 'low_stock',
      channel,
      id: item.id,
      title: `Low stock: ${item.name || item.option_name || `item ${item.id}`}`,
      detail: [
        item.available_quantity !== undefined ? `${item.available_quantity} left` : null,
        item.low_stock_threshold !== undefined ? `threshold ${item.low_stock_threshold}` : null,
      ].filter(Boolean).join(' · '),
      receivedAt,
    };
  }
  return null;
}

/**
 * Opens the socket and reports through `onChange(patch)` (state updates) and `onEvent(entry)`
 * (a dashboard entry). Returns a function that closes it.
 */
export function connect({ api, token, restaurantId, heartbeatMs = 30000, onChange, onEvent, onIgnored }) {
  const debug = (window.__cable = { url: null, frames: [], sent: [], closes: [] });
  if (!token || !restaurantId) {
    onChange({ state: 'disconnected', reason: 'no token or restaurant_id' });
    return () => {};
  }
  const url = cableUrl({ api, token, restaurantId });
  debug.url = url;
  const ws = new WebSocket(url); // no subprotocol, like Hafaloha
  const send = (obj) => {
    const text = JSON.stringify(obj);
    debug.sent.push(text);
    ws.send(text);
  };
  let counters = { pings: 0, pongs: 0, heartbeats: 0 };
  onChange({ state: 'connecting', url });

  ws.onopen = () => {
    onChange({ socketOpen: true, protocol: ws.protocol });
    for (const channel of ['OrderChannel', `order_channel_${restaurantId}`, 'InventoryChannel', `inventory_channel_${restaurantId}`]) {
      send({ command: 'subscribe', identifier: identifierFor(channel, restaurantId) });
    }
  };

  ws.onmessage = (event) => {
    const receivedAt = Date.now();
    debug.frames.push({ at: receivedAt, data: event.data });
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'welcome':
        onChange({ state: 'connected' });
        return;
      case 'ping':
        counters = { ...counters, pings: counters.pings + 1, pongs: counters.pongs + 1 };
        send({ type: 'pong' });
        onChange({ counters, lastPing: frame.message });
        return;
      case 'confirm_subscription':
        onChange({ confirmed: JSON.parse(frame.identifier).channel });
        return;
      case 'reject_subscription':
        onChange({ rejected: JSON.parse(frame.identifier).channel });
        return;
      case 'disconnect':
        onChange({ reason: frame.reason });
        return;
      default:
        break;
    }
    if (frame.identifier && frame.message !== undefined) {
      const channel = JSON.parse(frame.identifier).channel;
      const entry = describe(channel, frame.message, receivedAt);
      if (entry) onEvent(entry);
      else onIgnored({ channel, type: frame.message && frame.message.type });
    }
  };

  ws.onclose = (event) => {
    debug.closes.push({ code: event.code, reason: event.reason, wasClean: event.wasClean });
    clearInterval(heartbeat);
    onChange({ state: 'disconnected', closeCode: event.code, socketOpen: false });
  };

  const heartbeat = setInterval(() => {
    if (ws.readyState === WebSocket.OPEN) {
      counters = { ...counters, heartbeats: counters.heartbeats + 1 };
      send({ type: 'ping' });
      onChange({ counters });
    }
  }, heartbeatMs);

  return () => {
    clearInterval(heartbeat);
    ws.close();
  };
}
