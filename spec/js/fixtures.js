'use strict';
// The server configuration the Node specs run against, and loaders for the client libraries.

const { ORIGIN, tappedWebSocket } = require('./support');

const PREFIX = 'js_spec';

/** ferrocable config: HS256 tokens in ?token=, Redis (REDIS_URL from the env), quick pings. */
const CONFIG = `
[server]
host = "127.0.0.1"
shutdown_timeout_secs = 2

[logging]
format = "json"
level = "info"

[protocol]
rails_version = "7.2"
# Rails sends a ping every 3 s; 1 s keeps the clients' monitors busy without slowing anything.
ping_interval_secs = 1
reject_unknown_channels = false

[origins]
check = true
allow_same_origin_as_host = false
allowed = ["${ORIGIN}"]

[auth]
mode = "jwt"
token_param = "token"
accept_bearer_header = false
algorithm = "HS256"

[[auth.identifiers]]
name = "current_user"
claim = "user_id"
gid = "gid://js-spec/User/{}"

[[auth.identifiers]]
name = "restaurant_id"
claim = "restaurant_id"

[redis]
channel_prefix = "${PREFIX}"

[broadcast_api]
enabled = true

# stream_from "chat_#{params[:room]}"; reject without a room or unless the token's role is staff.
[channels.ChatChannel]
streams = ["chat_{params.room}"]
require_params = ["room"]
claims_in = { role = ["admin", "staff"] }

[channels.ChatChannel.actions.echo]
transmit = true

[channels.ChatChannel.actions.speak]
broadcast_to = "chat_{params.room}"

# Like Hafaloha's: stream_from "order_channel_#{restaurant_id}", params never read.
[channels.OrderChannel]
streams = ["order_channel_{restaurant_id}"]

# Reject unless the identifier's restaurant_id equals the connection's.
[channels.KitchenChannel]
streams = ["kitchen_{restaurant_id}"]
params_match = { restaurant_id = "restaurant_id" }
`;

/**
 * @rails/actioncable, unmodified, in Node. Two things a browser provides are supplied:
 * a WebSocket implementation (ws, through ActionCable.adapters.WebSocket, the library's own
 * hook; it also sends the Origin header a browser would) and window.addEventListener, which
 * ConnectionMonitor#start calls for "visibilitychange" (a no-op here: Node has no page
 * visibility). `frames` collects every socket's frames.
 */
function loadActionCable(frames = []) {
  if (typeof globalThis.addEventListener !== 'function') {
    globalThis.addEventListener = () => {};
    globalThis.removeEventListener = () => {};
  }
  const ActionCable = require('@rails/actioncable');
  ActionCable.adapters.WebSocket = tappedWebSocket(ORIGIN, frames);
  if (process.env.ACTIONCABLE_DEBUG) ActionCable.logger.enabled = true;
  return ActionCable;
}

module.exports = { CONFIG, PREFIX, loadActionCable };
