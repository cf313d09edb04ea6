# frozen_string_literal: true

# The recorded scenarios. Each block runs inside a Recorder::Session (see harness.rb);
# everything it sends and receives becomes a step of fixtures/transcripts/rails-<version>/<name>.json.
#
# Determinism rules followed below:
# - wait for each reply (recv) or for a fixed silence before the next command, because Rails
#   runs commands and broadcasts on a 4-thread worker pool and does not keep their order;
# - publish only after the confirm (the Redis SUBSCRIBE is then acknowledged);
# - frames whose relative order Rails does not guarantee are recorded with "any_order": true
#   (sorted, so two recordings are identical);
# - no timestamps, ports or tokens in transcripts: tokens are {{token:NAME}} placeholders,
#   pings are stripped (except in ping_cadence), Host is only sent explicitly where it matters.

require "base64"
require_relative "harness"

module Recorder
  STOCK = "actioncable-v1-json, actioncable-unsupported"
  HAFALOHA_ORIGIN = "https://hafaloha-orders.com"
  GENERIC_ORIGIN = "http://allowed.example"
  NOT_FOUND_CABLE = { status: 404, content_type: "text/plain", body: "Page not found" }.freeze

  # Helpers available inside scenario blocks.
  class Session
    def ident(hash)
      JSON.generate(hash) # what JSON.stringify produces: compact, <>& and non-ASCII raw
    end

    def order(rid = 1)
      ident("channel" => "OrderChannel", "restaurant_id" => rid)
    end

    def inventory(rid = 1)
      ident("channel" => "InventoryChannel", "restaurant_id" => rid)
    end

    def chat(room = "1")
      ident("channel" => "ChatChannel", "room" => room)
    end

    def hafaloha_headers(extra = {})
      { "Origin" => HAFALOHA_ORIGIN, "Sec-WebSocket-Protocol" => STOCK }.merge(extra)
    end

    def generic_headers(extra = {})
      { "Origin" => GENERIC_ORIGIN, "Sec-WebSocket-Protocol" => STOCK }.merge(extra)
    end

    def default_headers(extra = {})
      @stack.profile == :hafaloha ? hafaloha_headers(extra) : generic_headers(extra)
    end

    def user_token(name, user_id: 42, restaurant_id: 1, role: "admin", **opts)
      token(name, claims: { "user_id" => user_id, "restaurant_id" => restaurant_id, "role" => role }, **opts)
    end

    def cable_path(token_name, query = "&restaurant_id=1")
      "/cable?token={{token:#{token_name}}}#{query}"
    end

    # connect + 101 + welcome.
    def open_client(client, token_name = "admin_r1", headers: default_headers, query: "&restaurant_id=1")
      connect(client, path: cable_path(token_name, query), headers: headers)
      expect_status!(client, 101)
      recv(client)
      client
    end

    # subscribe and record the confirm (or reject).
    def subscribe!(client, identifier)
      subscribe(client, identifier)
      recv(client)
    end

    def expect_status!(client, status)
      got = @steps.reverse.find { |s| s["op"] == "http_response" && s["client"] == client.to_s }
      raise ScenarioError, "#{client}: expected HTTP #{status}, got #{got && got['status']}" unless got && got["status"] == status
    end

    # The unauthorized refusal: 101, disconnect frame, close 1000.
    def expect_unauthorized(client, path:, headers: hafaloha_headers)
      connect(client, path: path, headers: headers)
      expect_status!(client, 101)
      recv(client)
      recv_close(client)
    end

    def expect_refused(client, path:, headers:, websocket: true, method: "GET")
      connect(client, path: path, headers: headers, websocket: websocket, method: method)
      expect_status!(client, 404)
    end

    def gid_param(user_id)
      Base64.urlsafe_encode64("gid://shimizu-order-suite/User/#{user_id}", padding: false)
    end

    # ActionCable's connection identifier: parts sorted, joined with ":".
    def connection_identifier(user_id, restaurant_id)
      [gid_param(user_id), restaurant_id.to_s].sort.join(":")
    end
  end

  # ============================================================================
  # Hafaloha profile (fixtures/configs/hafaloha.toml)
  # ============================================================================

  scenario "hafaloha_client_session", profile: :hafaloha,
           description: "The Hafaloha dashboard's real session (hafaloha.md §6-7): no subprotocol offered, four subscribes " \
                        "sent right after the 101 (two of them to non-existent channel classes), pong/ping heartbeats, " \
                        "then a new_order and a low_stock broadcast made by Rails with Ruby types (BigDecimal, TimeWithZone, floats, nil)." do
    user_token "admin_r1"
    connect "a", path: cable_path("admin_r1"), headers: { "Origin" => HAFALOHA_ORIGIN }
    expect_status!("a", 101)
    subscribe "a", order
    subscribe "a", ident("channel" => "order_channel_1")
    subscribe "a", inventory
    subscribe "a", ident("channel" => "inventory_channel_1")
    recv "a"                      # welcome
    recv "a", 2, any_order: true  # the two confirms, in either order
    silence "a"
    send_text "a", '{"type":"pong"}'
    send_text "a", '{"type":"ping"}'
    silence "a"
    broadcast_ruby <<~RUBY.strip
      ActionCable.server.broadcast("order_channel_1", { type: "new_order", order: { id: 981, restaurant_id: 1, user_id: 7, items: [{ id: 12, name: "Acai Bowl", price: 12.5, quantity: 1, customizations: {} }], status: "pending", total: 12.5, promo_code: nil, special_instructions: "No <onions> & extra ice, merci", estimated_pickup_time: nil, created_at: Time.utc(2025, 4, 1, 9, 0, 0, 123456).in_time_zone("Pacific/Guam"), refund_amount: BigDecimal("0.0"), contact_name: "Kainoa Ōta", contact_phone: "+16715550100", payment_amount: 25.0, createdAt: Time.utc(2025, 4, 1, 9, 0, 0).in_time_zone("Pacific/Guam"), userId: 7, location_name: "Main", created_by_user_id: nil, is_staff_order: false }, staff_info: { created_by_staff_id: nil, created_by_user_id: nil, is_staff_order: false } })
    RUBY
    recv "a"
    broadcast_ruby <<~RUBY.strip
      ActionCable.server.broadcast("inventory_channel_1", { type: "low_stock", item: { id: 5, name: "Spam Musubi", price: 3.5, cost_to_make: 1.0, stock_quantity: 3, low_stock_threshold: 5, available_days: [], category_ids: [1, 2], enable_stock_tracking: true } })
    RUBY
    recv "a"
    silence "a"
  end

  # ---- §1.4 subprotocols ------------------------------------------------------

  {
    "subprotocol_none" => [nil, "No Sec-WebSocket-Protocol offered: 101 without the header, welcome sent anyway."],
    "subprotocol_v1_json_and_unsupported" => [STOCK, "The stock JS client's offer: actioncable-v1-json is selected."],
    "subprotocol_unsupported_only" => ["actioncable-unsupported", "Only actioncable-unsupported offered: it is selected and the server behaves normally."],
    "subprotocol_unsupported_first" => ["actioncable-unsupported, actioncable-v1-json", "The first protocol in the client's order wins, even actioncable-unsupported."],
    "subprotocol_unknown_only" => ["foo", "Only an unknown protocol offered: 101 without the header, welcome sent anyway."],
    "subprotocol_v1_json_extra_token" => ["actioncable-v1-json, actioncable-unsupported, token.abc", "An extra entry after the stock pair (7.1+ addSubProtocol): actioncable-v1-json selected."],
    "subprotocol_no_spaces" => ["foo,actioncable-v1-json,actioncable-unsupported", "Comma-separated without spaces, unknown first: actioncable-v1-json selected."]
  }.each do |name, (offer, desc)|
    scenario name, profile: :hafaloha, description: desc do
      user_token "admin_r1"
      headers = { "Origin" => HAFALOHA_ORIGIN }
      headers["Sec-WebSocket-Protocol"] = offer if offer
      open_client "a", headers: headers
      subscribe! "a", order
    end
  end

  # ---- §1.2/1.3 origins and non-WebSocket requests ----------------------------

  scenario "origin_allowed", profile: :hafaloha,
           description: "Origins in the Hafaloha list are upgraded: exact https origin, the same with a trailing slash, a localhost dev port." do
    user_token "admin_r1"
    open_client "a", headers: hafaloha_headers("Origin" => "https://hafaloha-orders.com")
    open_client "b", headers: hafaloha_headers("Origin" => "https://crab-daddy.netlify.app/")
    open_client "c", headers: hafaloha_headers("Origin" => "http://localhost:5174")
  end

  scenario "origin_refused", profile: :hafaloha,
           description: "Origins not in the list get HTTP 404 'Page not found' (text/plain), no upgrade: foreign host, other " \
                        "localhost port, different case, localhost with a trailing slash (not listed), suffix of a listed host, 'null'." do
    user_token "admin_r1"
    ["https://evil.example", "http://localhost:5176", "HTTPS://HAFALOHA-ORDERS.COM", "http://localhost:5173/",
     "https://hafaloha-orders.com.evil.example", "null"].each_with_index do |origin, i|
      expect_refused (i + 97).chr, path: cable_path("admin_r1"), headers: hafaloha_headers("Origin" => origin)
    end
  end

  scenario "origin_missing", profile: :hafaloha,
           description: "No Origin header at all: 404, even with a valid token." do
    user_token "admin_r1"
    expect_refused "a", path: cable_path("admin_r1"), headers: { "Sec-WebSocket-Protocol" => STOCK }
  end

  scenario "origin_same_host", profile: :hafaloha,
           description: "allow_same_origin_as_host: Origin equal to http://<raw Host header> is accepted even though it is not listed, port included." do
    user_token "admin_r1"
    open_client "a", headers: hafaloha_headers("Host" => "reference.test", "Origin" => "http://reference.test")
    open_client "b", headers: hafaloha_headers("Host" => "reference.test:8443", "Origin" => "http://reference.test:8443")
    expect_refused "c", path: cable_path("admin_r1"),
                        headers: hafaloha_headers("Host" => "reference.test:8443", "Origin" => "http://reference.test")
  end

  scenario "origin_same_host_scheme", profile: :hafaloha,
           description: "The same-origin check uses https only when Rack sees the request as SSL: https Origin refused on plain HTTP, " \
                        "accepted with X-Forwarded-Proto: https, and then the http Origin is refused." do
    user_token "admin_r1"
    expect_refused "a", path: cable_path("admin_r1"),
                        headers: hafaloha_headers("Host" => "reference.test", "Origin" => "https://reference.test")
    open_client "b", headers: hafaloha_headers("Host" => "reference.test", "Origin" => "https://reference.test",
                                               "X-Forwarded-Proto" => "https")
    expect_refused "c", path: cable_path("admin_r1"),
                        headers: hafaloha_headers("Host" => "reference.test", "Origin" => "http://reference.test",
                                                  "X-Forwarded-Proto" => "https")
  end

  scenario "http_cable_not_websocket", profile: :hafaloha,
           description: "Requests to /cable that are not WebSocket upgrades get 404 'Page not found' text/plain: plain GET, " \
                        "Upgrade without Connection: Upgrade, POST with upgrade headers, Upgrade: h2c." do
    user_token "admin_r1"
    expect_refused "a", path: cable_path("admin_r1"), headers: { "Origin" => HAFALOHA_ORIGIN }, websocket: false
    expect_refused "b", path: cable_path("admin_r1"), headers: hafaloha_headers("Connection" => nil)
    expect_refused "c", path: cable_path("admin_r1"), headers: hafaloha_headers, method: "POST"
    expect_refused "d", path: cable_path("admin_r1"), headers: hafaloha_headers("Upgrade" => "h2c")
  end

  scenario "http_other_paths", profile: :hafaloha,
           description: "Paths other than the mount are the Rails app's business (here: API-only 404, empty text/html body), " \
                        "WebSocket headers or not." do
    connect "a", path: "/", headers: {}, websocket: false
    connect "b", path: "/health", headers: {}, websocket: false
    connect "c", path: "/cablex", headers: hafaloha_headers
  end

  # Paths next to the mount, for the two mount styles (engine, app routes).
  MOUNT_NEIGHBOURS = ["/cable/anything", "/cable/", "/cable//", "//cable", "/cable.json", "/cable-x", "/cable_x", "/cablex"].freeze

  scenario "mount_subpath", profile: :hafaloha,
           description: {
             "6.1" => "The engine's own mount (config.action_cable.mount_path) is unanchored in 6.1: after Rails' path " \
                      "normalization (/cable/, /cable//, //cable are /cable), any path that starts with /cable at a word " \
                      "boundary is the endpoint (/cable/anything, /cable.json, /cable-x: 101, welcome); /cable_x and " \
                      "/cablex are the app's 404.",
             "7.2" => "The engine's own mount (config.action_cable.mount_path) is anchored from 7.0.4: after Rails' path " \
                      "normalization (/cable/, /cable//, //cable are /cable) only /cable is the endpoint; /cable/anything, " \
                      "/cable.json, /cable-x, /cable_x and /cablex are the app's 404 (JSON for .json)."
           } do
    user_token "admin_r1"
    MOUNT_NEIGHBOURS.each_with_index do |path, i|
      connect_and_record (i + 97).chr, path: "#{path}?token={{token:admin_r1}}", headers: hafaloha_headers
    end
  end

  scenario "mount_subpath_routes", profile: :hafaloha_routes,
           description: "With the app's own `mount ActionCable.server => \"/cable\"` in routes (as Hafaloha has), a plain mount " \
                        "is never anchored: /cable/anything, /cable/, /cable//, //cable, /cable.json and /cable-x reach Action " \
                        "Cable on every version; /cable_x and /cablex do not." do
    user_token "admin_r1"
    MOUNT_NEIGHBOURS.each_with_index do |path, i|
      connect_and_record (i + 97).chr, path: "#{path}?token={{token:admin_r1}}", headers: hafaloha_headers
    end
  end

  scenario "handshake_header_variants", profile: :hafaloha,
           description: "Upgrade is compared case-insensitively and Connection is a comma list: 'Upgrade: WebSocket' and " \
                        "'Connection: keep-alive, Upgrade' are upgraded." do
    user_token "admin_r1"
    open_client "a", headers: hafaloha_headers("Upgrade" => "WebSocket")
    open_client "b", headers: hafaloha_headers("Connection" => "keep-alive, Upgrade")
  end

  # ---- §1.5 authentication ------------------------------------------------------

  scenario "auth_no_token", profile: :hafaloha,
           description: "No token query parameter: 101, then the unauthorized disconnect and close 1000; never an HTTP 401." do
    expect_unauthorized "a", path: "/cable?restaurant_id=1"
  end

  scenario "auth_malformed_token", profile: :hafaloha,
           description: "Literal tokens that are not JWTs: garbage, empty, three dot-separated garbage segments." do
    expect_unauthorized "a", path: "/cable?token=not-a-jwt&restaurant_id=1"
    expect_unauthorized "b", path: "/cable?token=&restaurant_id=1"
    expect_unauthorized "c", path: "/cable?token=a.b.c&restaurant_id=1"
  end

  scenario "auth_bad_signature", profile: :hafaloha,
           description: "HS256 token signed with another secret." do
    user_token "wrong_secret", secret: "not-the-secret-key-base"
    expect_unauthorized "a", path: cable_path("wrong_secret")
  end

  scenario "auth_expired", profile: :hafaloha,
           description: "exp in the past (one hour, one minute): refused (leeway 0)." do
    user_token "expired_1h", exp_in: -3600
    user_token "expired_1m", exp_in: -60
    expect_unauthorized "a", path: cable_path("expired_1h")
    expect_unauthorized "b", path: cable_path("expired_1m")
  end

  scenario "auth_no_exp", profile: :hafaloha,
           description: "A token without exp is accepted (exp and nbf are only checked when present)." do
    user_token "no_exp", exp_in: nil
    open_client "a", "no_exp"
    subscribe! "a", order
  end

  scenario "auth_future_nbf", profile: :hafaloha,
           description: "nbf one hour in the future: refused." do
    user_token "future_nbf", nbf_in: 3600
    expect_unauthorized "a", path: cable_path("future_nbf")
  end

  scenario "auth_wrong_algorithm", profile: :hafaloha,
           description: "HS512 and HS384 tokens signed with the right secret: refused, only HS256 is accepted." do
    user_token "hs512", alg: "HS512"
    user_token "hs384", alg: "HS384"
    expect_unauthorized "a", path: cable_path("hs512")
    expect_unauthorized "b", path: cable_path("hs384")
  end

  scenario "auth_alg_none", profile: :hafaloha,
           description: "An unsigned alg:none token (empty signature segment): refused." do
    user_token "alg_none", alg: "none"
    expect_unauthorized "a", path: cable_path("alg_none")
  end

  scenario "auth_missing_user_id", profile: :hafaloha,
           description: "Valid signature but no user_id claim, or user_id null: refused." do
    token "no_user", claims: { "restaurant_id" => 1, "role" => "admin" }
    token "null_user", claims: { "user_id" => nil, "restaurant_id" => 1, "role" => "admin" }
    expect_unauthorized "a", path: cable_path("no_user")
    expect_unauthorized "b", path: cable_path("null_user")
  end

  scenario "auth_missing_restaurant_id", profile: :hafaloha,
           description: "Valid signature but no restaurant_id claim, or restaurant_id null: refused (the query parameter does not count)." do
    token "no_restaurant", claims: { "user_id" => 42, "role" => "admin" }
    token "null_restaurant", claims: { "user_id" => 42, "restaurant_id" => nil, "role" => "admin" }
    expect_unauthorized "a", path: cable_path("no_restaurant")
    expect_unauthorized "b", path: cable_path("null_restaurant")
  end

  scenario "auth_bearer_header_ignored", profile: :hafaloha,
           description: "A valid token in 'Authorization: Bearer' without the query parameter is refused: the token is read from ?token= only." do
    user_token "admin_r1"
    expect_unauthorized "a", path: "/cable?restaurant_id=1",
                             headers: hafaloha_headers("Authorization" => "Bearer {{token:admin_r1}}")
  end

  scenario "auth_restaurant_id_string_claim", profile: :hafaloha,
           description: "A super_admin-style string restaurant_id claim \"1\" streams order_channel_1 like the integer 1." do
    user_token "super_r1", user_id: 7, restaurant_id: "1", role: "super_admin"
    open_client "a", "super_r1"
    subscribe! "a", order("1")
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":1}}'
    recv "a"
  end

  scenario "auth_restaurant_id_empty_string", profile: :hafaloha,
           description: "restaurant_id claim \"\" is present (not null), so the connection is accepted, but every Hafaloha " \
                        "channel rejects a blank restaurant_id." do
    user_token "blank_restaurant", restaurant_id: ""
    open_client "a", "blank_restaurant"
    subscribe! "a", order("")
    subscribe! "a", ident("channel" => "NotificationChannel")
  end

  # ---- §1.5/§2 welcome, buffering, pings -------------------------------------------

  scenario "welcome", profile: :hafaloha,
           description: "A valid connection gets exactly {\"type\":\"welcome\"} and nothing else but pings." do
    user_token "admin_r1"
    open_client "a"
    silence "a"
  end

  scenario "commands_before_welcome", profile: :hafaloha,
           description: "A subscribe sent immediately after the 101 (before welcome) is buffered and answered after the welcome." do
    user_token "admin_r1"
    connect "a", path: cable_path("admin_r1"), headers: hafaloha_headers
    expect_status! "a", 101
    subscribe "a", order
    recv "a"
    recv "a"
  end

  scenario "ping_cadence", profile: :hafaloha,
           description: "Pings {\"type\":\"ping\",\"message\":<integer unix seconds>} arrive every 3 s (gap_s) after the welcome." do
    user_token "admin_r1"
    open_client "a"
    recv_pings "a", 3
  end

  # ---- §3 subscriptions -------------------------------------------------------------

  scenario "subscribe_confirm", profile: :hafaloha,
           description: "Subscribe to each of the six Hafaloha channels: one confirm each, identifier echoed; broadcasts reach them." do
    user_token "admin_r1"
    open_client "a"
    %w[OrderChannel InventoryChannel MenuChannel NotificationChannel CategoryChannel RestaurantChannel].each do |ch|
      subscribe! "a", ident("channel" => ch, "restaurant_id" => 1)
    end
    %w[order inventory menu notification category restaurant].each do |snake|
      broadcast "#{snake}_channel_1", %({"type":"#{snake}_update","id":1})
      recv "a"
    end
  end

  scenario "subscribe_duplicate", profile: :hafaloha,
           description: "A second identical subscribe gets no second confirm, and broadcasts are not doubled." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    subscribe "a", order
    silence "a"
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":2}}'
    recv "a"
    silence "a"
  end

  scenario "unsubscribe", profile: :hafaloha,
           description: "Unsubscribe has no acknowledgement; broadcasts stop." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    unsubscribe "a", order
    silence "a"
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":3}}'
    silence "a"
  end

  scenario "unsubscribe_twice", profile: :hafaloha,
           description: "A second unsubscribe of the same identifier (now unknown) is silently ignored; the connection stays usable." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    unsubscribe "a", order
    silence "a"
    unsubscribe "a", order
    silence "a"
    subscribe! "a", inventory
  end

  scenario "subscribe_after_unsubscribe", profile: :hafaloha,
           description: "Subscribing again after an unsubscribe confirms again and receives broadcasts once." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    unsubscribe "a", order
    silence "a"
    subscribe! "a", order
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":4}}'
    recv "a"
    silence "a"
  end

  scenario "subscribe_unknown_channel", profile: :hafaloha,
           description: "Unknown channel classes get no reply at all (no reject): NopeChannel, the client's bogus order_channel_1, a " \
                        "generic-profile channel, an empty name, non-channel constants (Object, User)." do
    user_token "admin_r1"
    open_client "a"
    ["NopeChannel", "order_channel_1", "inventory_channel_1", "ChatChannel", "", "Object", "User"].each do |ch|
      subscribe "a", ident("channel" => ch)
      silence "a"
    end
    subscribe! "a", order
  end

  scenario "subscribe_framework_classes", profile: :hafaloha,
           description: {
             "6.1" => "ApplicationCable::Channel (the app's base class) and ActionCable::Channel::Base itself are both channels " \
                      "in 6.1: both confirm at once and stream nothing.",
             "7.2" => "ApplicationCable::Channel (the app's base class, any subclass of ActionCable::Channel::Base) confirms and " \
                      "streams nothing; ActionCable::Channel::Base itself is refused silently (no reply), from 7.0."
           } do
    user_token "admin_r1"
    open_client "a"
    subscribe_and_record "a", ident("channel" => "ApplicationCable::Channel")
    subscribe_and_record "a", ident("channel" => "ActionCable::Channel::Base")
    subscribe! "a", order
  end

  scenario "identifier_not_json", profile: :hafaloha,
           description: "An identifier string that is not JSON is ignored silently." do
    user_token "admin_r1"
    open_client "a"
    send_text "a", '{"command":"subscribe","identifier":"OrderChannel"}'
    silence "a"
    send_text "a", '{"command":"subscribe","identifier":"{\"channel\":\"OrderChannel\""}'
    silence "a"
    subscribe! "a", order
  end

  scenario "identifier_without_channel", profile: :hafaloha,
           description: "An identifier object without a channel key (or with channel null) is ignored silently." do
    user_token "admin_r1"
    open_client "a"
    subscribe "a", ident("restaurant_id" => 1)
    silence "a"
    subscribe "a", ident("channel" => nil, "restaurant_id" => 1)
    silence "a"
    subscribe! "a", order
  end

  scenario "identifier_not_object", profile: :hafaloha,
           description: "Identifiers that are JSON but not objects ([1], null, 42, a string) are ignored silently." do
    user_token "admin_r1"
    open_client "a"
    ["[1]", "null", "42", '"OrderChannel"'].each do |id|
      subscribe "a", id
      silence "a"
    end
    subscribe! "a", order
  end

  scenario "identifier_missing_or_not_string", profile: :hafaloha,
           description: "subscribe without identifier, or with an identifier that is an object or a number instead of a string: ignored." do
    user_token "admin_r1"
    open_client "a"
    send_text "a", '{"command":"subscribe"}'
    silence "a"
    send_text "a", '{"command":"subscribe","identifier":{"channel":"OrderChannel","restaurant_id":1}}'
    silence "a"
    send_text "a", '{"command":"subscribe","identifier":1}'
    silence "a"
    subscribe! "a", order
  end

  scenario "identifier_reordered_keys", profile: :hafaloha,
           description: "The identifier is the raw string: the same params in another key order (or with spaces) are independent subscriptions." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    subscribe! "a", '{"restaurant_id":1,"channel":"OrderChannel"}'
    subscribe! "a", '{ "channel" : "OrderChannel" , "restaurant_id" : 1 }'
    unsubscribe "a", order
    silence "a"
    unsubscribe "a", '{ "channel" : "OrderChannel" , "restaurant_id" : 1 }'
    silence "a"
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":5}}'
    recv "a"
    silence "a"
  end

  scenario "identifier_number_vs_string", profile: :hafaloha,
           description: "restaurant_id 1 (dashboard) vs \"1\" (OnlineOrderingApp) in the identifier: each echoed as sent, both stream order_channel_1." do
    user_token "admin_r1"
    open_client "a"
    open_client "b"
    subscribe! "a", order(1)
    subscribe! "b", order("1")
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":6}}'
    recv "a"
    recv "b"
  end

  scenario "identifier_escaping", profile: :hafaloha,
           description: "Identifier echo uses ActiveSupport escaping: <>& as \\u003c\\u003e\\u0026, U+2028 as \\u2028, non-ASCII and emoji raw, spaces kept." do
    user_token "admin_r1"
    open_client "a"
    id = "{ \"channel\":\"OrderChannel\", \"restaurant_id\":1, \"note\":\"<b>&amp; é \u2028 \u{1F600} /\\\\ \\\"q\\\"\" }"
    subscribe! "a", id
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":7}}'
    recv "a"
  end

  scenario "tenant_isolation", profile: :hafaloha,
           description: "Identifier params are ignored: a restaurant-1 client subscribing with restaurant_id 2 (and ?restaurant_id=2) " \
                        "streams order_channel_1 only; a restaurant-2 client gets order_channel_2 only." do
    user_token "admin_r1"
    user_token "admin_r2", user_id: 43, restaurant_id: 2
    open_client "a", query: "&restaurant_id=2"
    open_client "b", "admin_r2", query: "&restaurant_id=2"
    subscribe! "a", order(2)
    subscribe! "b", order(2)
    broadcast "order_channel_2", '{"type":"new_order","order":{"id":20,"restaurant_id":2}}'
    recv "b"
    silence "a"
    broadcast "order_channel_1", '{"type":"new_order","order":{"id":10,"restaurant_id":1}}'
    recv "a"
    silence "b"
  end

  # ---- §3 malformed commands ----------------------------------------------------------

  scenario "command_malformed_json", profile: :hafaloha,
           description: "Frames that are not JSON (garbage, truncated, empty) are ignored; the connection stays open." do
    user_token "admin_r1"
    open_client "a"
    ["{not json", '{"command":"subscribe",', ""].each do |t|
      send_text "a", t
      silence "a"
    end
    subscribe! "a", order
  end

  scenario "command_not_object", profile: :hafaloha,
           description: "JSON null, arrays (even of a valid command), strings, numbers, booleans as the frame: ignored." do
    user_token "admin_r1"
    open_client "a"
    ["null", "[]", "[#{command('subscribe', order)}]", '"subscribe"', "42", "true"].each do |t|
      send_text "a", t
      silence "a"
    end
    subscribe! "a", order
  end

  scenario "command_unknown", profile: :hafaloha,
           description: "Unknown or missing commands are ignored: the dashboard's {\"type\":\"pong\"} and {\"type\":\"ping\"}, " \
                        "frobnicate, wrong case, null command." do
    user_token "admin_r1"
    open_client "a"
    ['{"type":"pong"}', '{"type":"ping"}', command("frobnicate", order), command("Subscribe", order),
     '{"command":null,"identifier":"{\"channel\":\"OrderChannel\",\"restaurant_id\":1}"}'].each do |t|
      send_text "a", t
      silence "a"
    end
    subscribe! "a", order
  end

  scenario "message_unknown_identifier", profile: :hafaloha,
           description: "message and unsubscribe for an identifier that is not subscribed are ignored." do
    user_token "admin_r1"
    open_client "a"
    message "a", order, '{"action":"speak"}'
    silence "a"
    unsubscribe "a", inventory
    silence "a"
    subscribe! "a", order
  end

  scenario "message_channel_without_actions", profile: :hafaloha,
           description: "Hafaloha channels have no actions: messages with no action, an empty action, an unknown action or a " \
                        "framework method (transmit, stream_from) produce nothing." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    ['{"text":"hi"}', '{"action":""}', '{"action":"speak","text":"hi"}', '{"action":"transmit"}',
     '{"action":"stream_from"}', '{"action":"unsubscribed"}'].each do |data|
      message "a", order, data
      silence "a"
    end
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":8}}'
    recv "a"
  end

  scenario "quirk_action_subscribed", profile: :hafaloha,
           description: "RAILS QUIRK (not expressible in ferrocable's config): Hafaloha's channels define subscribed as a public " \
                        "method, so {\"action\":\"subscribed\"} runs it again; its second stream_from doubles every broadcast, and " \
                        "the leaked handler keeps delivering after unsubscribe." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    message "a", order, '{"action":"subscribed"}'
    silence "a"
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":9}}'
    recv "a", 2
    silence "a"
    unsubscribe "a", order
    silence "a"
    broadcast "order_channel_1", '{"type":"order_updated","order":{"id":10}}'
    recv "a"
    silence "a"
  end

  # ---- §4 broadcasts -----------------------------------------------------------------------

  scenario "broadcast_rails_types", profile: :hafaloha,
           description: "ActionCable.server.broadcast with Ruby values: the PUBLISHed bytes (ActiveSupport JSON) and the frames; " \
                        "BigDecimal as string, Time with 3 decimals, Date, NaN as null, floats via Float#to_s, escaping." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    broadcast_ruby <<~RUBY.strip
      ActionCable.server.broadcast("order_channel_1", { s: "<b>&</b> é \\u2028 \\u2029 \\u{1F600} / \\\\ \\" \\t\\n\\u0001\\u007f", whole: 25.0, f: 12.5, big: 1.0e20, small: 1.0e-5, hundred_billion: 100000000000.0, neg_zero: -0.0, nan: Float::NAN, inf: Float::INFINITY, bd: BigDecimal("12.50"), int: 12345678901234567890, t: Time.utc(2025, 4, 1, 9, 0, 0, 123456), twz: Time.utc(2025, 4, 1, 9, 0, 0).in_time_zone("Pacific/Guam"), d: Date.new(2024, 1, 2), nil: nil, t_f: [true, false], sym: :pending, nested: { "k" => [1, [2, [3]]] } })
    RUBY
    recv "a"
    broadcast_ruby 'ActionCable.server.broadcast("order_channel_1", "hello")'
    recv "a"
    broadcast_ruby 'ActionCable.server.broadcast("order_channel_1", 42)'
    recv "a"
    broadcast_ruby 'ActionCable.server.broadcast("order_channel_1", nil)'
    recv "a"
    broadcast_ruby 'ActionCable.server.broadcast("order_channel_1", [1, "two", { three: 3 }])'
    recv "a"
    broadcast_ruby 'ActionCable.server.broadcast(:order_channel_1, { via: "symbol stream name" })'
    recv "a"
  end

  RAW_BROADCASTS = {
    "broadcast_raw_escaping" => [
      "Non-canonical payloads PUBLISHed directly: escapes are decoded and re-encoded the ActiveSupport way " \
      "(\\/ -> /, \\u00e9 -> raw, <>& escaped, U+2028 escaped, controls lowercase \\u00XX, DEL raw).",
      ["{\"s\":\"\\u003c\\/x\\u00e9 <y> & \u2028 \\u2029 \u{1F600} \\ud83d\\ude00\"}",
       "{\"c\":\"\\u0001\\u001F\\b\\f\\n\\r\\t\u007f\\u007F\"}",
       "{\"q\":\"\\\"quoted\\\" and \\\\backslash\\\\\"}"]
    ],
    "broadcast_raw_numbers" => [
      "Numbers are re-encoded by the json gem: 2.50 -> 2.5, 1e3 -> 1000.0, 1E-7 -> 1.0e-07, big integers exact, -0 stays 0.",
      ['{"a":[1, 2.50, 1e3, 1E-7, 12345678901234567890123]}',
       '{"b":[-0, -0.0, 0.1, 1.5e300, 100000000000.0, 1e20, 1.0e+16, 123456789.123456789, 5e-324]}']
    ],
    "broadcast_raw_structure" => [
      "Whitespace and newlines removed, duplicate keys collapse (last value, first position), nesting and empties kept.",
      ["{ \"a\" : 1 ,\n  \"b\" : [ 1 , [ 2 , [ 3 , [ ] ] ] ] , \"o\" : { } }",
       '{"k":1,"z":0,"k":2}',
       '{"t":"2024-01-02T03:04:05Z","nested":{"deep":{"deeper":[{"x":null}]}}}']
    ],
    "broadcast_raw_scalars" => [
      "Payloads that are JSON scalars or arrays are delivered as the message value.",
      ['"just a string"', "42", "null", "true", '[1,"two"]', '"<&>"', "  3.0  "]
    ]
  }.freeze

  RAW_BROADCASTS.each do |name, (desc, payloads)|
    scenario name, profile: :hafaloha, description: desc do
      user_token "admin_r1"
      open_client "a"
      subscribe! "a", order
      payloads.each do |p|
        publish_raw "order_channel_1", p
        recv "a"
      end
    end
  end

  scenario "broadcast_raw_invalid_json", profile: :hafaloha,
           description: "Payloads that are not valid JSON are dropped (nothing sent); the next valid one is delivered." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    ["not json", '{"a":', "", "NaN", "{'a':1}", "[1,]"].each do |p|
      publish_raw "order_channel_1", p
      silence "a"
    end
    publish_raw "order_channel_1", '{"ok":true}'
    recv "a"
  end

  scenario "broadcast_multiple_clients", profile: :hafaloha,
           description: "One broadcast reaches every subscriber of the stream (two users of restaurant 1) and no one else." do
    user_token "admin_r1"
    user_token "staff_r1", user_id: 50, role: "staff"
    user_token "admin_r2", user_id: 43, restaurant_id: 2
    open_client "a"
    open_client "b", "staff_r1"
    open_client "c", "admin_r2", query: "&restaurant_id=2"
    subscribe! "a", order
    subscribe! "b", order("1")
    subscribe! "c", order(2)
    broadcast "order_channel_1", '{"type":"new_order","order":{"id":11}}'
    recv "a"
    recv "b"
    silence "c"
  end

  scenario "broadcast_unsubscribed_stream", profile: :hafaloha,
           description: "Broadcasts to streams nobody on this connection follows (other channel, other tenant, unprefixed name) are not delivered." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    publish_raw "menu_channel_1", '{"x":1}'
    silence "a"
    publish_raw "order_channel_1", '{"x":2}', full_channel: true
    silence "a"
    publish_raw "order_channel_1", '{"x":3}'
    recv "a"
  end

  # ---- §5 remote disconnect ----------------------------------------------------------------

  scenario "remote_disconnect", profile: :hafaloha,
           description: {
             "6.1" => "remote_connections.where(current_user:, restaurant_id:).disconnect: every connection of that " \
                      "user+restaurant gets a close 1000 and no JSON frame (6.1); other users and tenants are untouched.",
             "7.2" => "remote_connections.where(current_user:, restaurant_id:).disconnect: every connection of that " \
                      "user+restaurant gets {\"type\":\"disconnect\",\"reason\":\"remote\",\"reconnect\":true} then close 1000 " \
                      "(7.1+); other users and tenants are untouched."
           } do
    user_token "u77_r1", user_id: 77
    user_token "u78_r1", user_id: 78
    user_token "u77_r2", user_id: 77, restaurant_id: 2
    open_client "a", "u77_r1"
    open_client "b", "u77_r1"
    open_client "c", "u78_r1"
    open_client "d", "u77_r2", query: "&restaurant_id=2"
    %w[a b c].each { |c| subscribe! c, order }
    subscribe! "d", order(2)
    wait_for_subscription "action_cable/#{connection_identifier(77, 1)}"
    remote_disconnect({ "current_user" => 77, "restaurant_id" => 1 })
    recv_frames_then_close "a"
    recv_frames_then_close "b"
    silence "c", "d"
  end

  scenario "remote_disconnect_reconnect", profile: :hafaloha, versions: %w[7.2],
           description: "disconnect(reconnect: false) and disconnect(reconnect: true) (the keyword is 7.1+): the payload " \
                        "published on the internal channel carries reconnect, and the disconnect frame repeats it before close 1000." do
    user_token "u82_r1", user_id: 82
    user_token "u83_r1", user_id: 83
    open_client "a", "u82_r1"
    open_client "b", "u83_r1"
    wait_for_subscription "action_cable/#{connection_identifier(82, 1)}"
    wait_for_subscription "action_cable/#{connection_identifier(83, 1)}"
    remote_disconnect({ "current_user" => 82, "restaurant_id" => 1 }, reconnect: false)
    recv_frames_then_close "a"
    silence "b"
    remote_disconnect({ "current_user" => 83, "restaurant_id" => 1 }, reconnect: true)
    recv_frames_then_close "b"
  end

  scenario "identifier_false", profile: :hafaloha,
           description: {
             "6.1" => "A restaurant_id claim of false is not nil, so the connection is accepted; 6.1 keeps the false in its " \
                      "connection identifier (internal channel action_cable/<gid>:false), as the remote disconnect shows.",
             "7.2" => "A restaurant_id claim of false is not nil, so the connection is accepted; 7.0+ drops a false identifier " \
                      "from its connection identifier (internal channel action_cable/<gid>), as the remote disconnect shows."
           } do
    token "false_restaurant", claims: { "user_id" => 84, "restaurant_id" => false, "role" => "admin" }
    open_client "a", "false_restaurant"
    subscribe! "a", order(1)
    wait_for_internal_channel gid_param(84)
    remote_disconnect({ "current_user" => 84, "restaurant_id" => false })
    recv_frames_then_close "a"
  end

  scenario "internal_channel_payloads", profile: :hafaloha,
           description: {
             "6.1" => "Raw payloads on the internal channel <prefix>:action_cable/<connection identifier>: other types and " \
                      "strings are ignored; a 7.1-style disconnect with reconnect:false just closes on 6.1 (no frame).",
             "7.2" => "Raw payloads on the internal channel <prefix>:action_cable/<connection identifier>: other types and " \
                      "strings are ignored; a disconnect with reconnect:false sends the remote disconnect frame with " \
                      "reconnect false, then close 1000."
           } do
    user_token "u80_r1", user_id: 80
    open_client "a", "u80_r1"
    subscribe! "a", order
    internal = "action_cable/#{connection_identifier(80, 1)}"
    wait_for_subscription internal
    publish_raw internal, '{"type":"other"}'
    silence "a"
    publish_raw internal, '"disconnect"'
    silence "a"
    publish_raw internal, '{"type":"disconnect","reconnect":false}'
    recv_frames_then_close "a"
  end

  scenario "internal_channel_non_object", profile: :hafaloha,
           description: "A JSON number on the internal channel makes Rails close the connection with reason null (docs/PROTOCOL.md §5.2)." do
    user_token "u81_r1", user_id: 81
    open_client "a", "u81_r1"
    subscribe! "a", order
    internal = "action_cable/#{connection_identifier(81, 1)}"
    wait_for_subscription internal
    publish_raw internal, "42"
    recv_frames_then_close "a"
  end

  # ---- WebSocket framing ------------------------------------------------------------------------

  scenario "binary_frame", profile: :hafaloha,
           description: "A binary frame carrying a valid subscribe is ignored (websocket-driver before 0.8, here 0.6.3 on both " \
                        "Debian releases, hands it over as a byte array); the connection stays open and text commands still work." do
    user_token "admin_r1"
    open_client "a"
    send_binary "a", command("subscribe", order)
    silence "a"
    subscribe! "a", order
  end

  scenario "close_by_client", profile: :hafaloha,
           description: "Client-initiated close handshakes: the server answers with a close frame and drops TCP." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    send_close "a", 1000
    recv_close "a"
    open_client "b"
    send_close "b", 1001, "going away"
    recv_close "b"
  end

  scenario "close_without_code", profile: :hafaloha,
           description: "A client close frame with no status code (a browser's ws.close(), @rails/actioncable's " \
                        "consumer.disconnect()) is answered with close 1000 and an empty reason, not an empty close frame." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", order
    send_close "a", nil
    recv_close "a"
    open_client "b"
    send_close "b", nil
    recv_close "b"
  end

  scenario "frame_client_ping", profile: :hafaloha,
           description: "A WebSocket ping frame from the client is answered with a pong carrying the same payload." do
    user_token "admin_r1"
    open_client "a"
    send_ping "a", "hello"
    recv_pong "a"
    subscribe! "a", order
  end

  scenario "frame_fragmented_message", profile: :hafaloha,
           description: "A subscribe split over a text frame and a continuation frame is reassembled and confirmed." do
    user_token "admin_r1"
    open_client "a"
    cmd = command("subscribe", order)
    send_raw "a", WsClient.frame(0x1, cmd[0, 20], fin: false), note: "text frame, FIN clear, first 20 bytes of a subscribe"
    send_raw "a", WsClient.frame(0x0, cmd[20..]), note: "continuation frame, FIN set, the rest"
    recv "a"
  end

  scenario "frame_invalid_utf8", profile: :hafaloha,
           description: "A text frame with invalid UTF-8 fails the connection with close 1007 and websocket-driver's reason; " \
                        "TCP is dropped without waiting for an echo." do
    user_token "admin_r1"
    open_client "a"
    send_raw "a", WsClient.frame(0x1, "{\"command\":\"\xff\xfe\"}".b), note: "masked text frame with bytes ff fe"
    recv_close "a"
  end

  scenario "frame_unmasked", profile: :hafaloha,
           description: "An unmasked client frame fails the connection with close 1003 and websocket-driver's reason " \
                        "(not 1002: websocket-driver classes it as 'unacceptable'); TCP is dropped without waiting for an echo." do
    user_token "admin_r1"
    open_client "a"
    send_raw "a", WsClient.frame(0x1, command("subscribe", order), mask: nil), note: "unmasked text frame"
    recv_close "a"
  end

  # Must stay the last hafaloha scenario: it restarts ActionCable.server in the app.
  scenario "server_restart", profile: :hafaloha,
           description: "ActionCable.server.restart: every connection gets the server_restart disconnect (reconnect true) and " \
                        "close 1000; new connections are accepted afterwards." do
    user_token "admin_r1"
    user_token "admin_r2", user_id: 43, restaurant_id: 2
    open_client "a"
    open_client "b", "admin_r2"
    subscribe! "a", order
    server_restart
    recv "a"
    recv_close "a"
    recv "b"
    recv_close "b"
    open_client "c"
    subscribe! "c", order
  end

  # ============================================================================
  # Generic profile (fixtures/configs/generic.toml)
  # ============================================================================

  scenario "chat_confirm_and_reject", profile: :generic,
           description: "ChatChannel confirms with a room (string or number) and rejects without one (missing, empty, null); a " \
                        "rejected identifier can be retried and is rejected again." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", chat("1")
    subscribe! "a", ident("channel" => "ChatChannel", "room" => 2)
    subscribe! "a", ident("channel" => "ChatChannel")
    subscribe! "a", ident("channel" => "ChatChannel", "room" => "")
    subscribe! "a", ident("channel" => "ChatChannel", "room" => nil)
    subscribe! "a", ident("channel" => "ChatChannel")
  end

  scenario "chat_speak_broadcast", profile: :generic,
           description: "The speak action broadcasts the data hash (action included) to chat_<room> through Redis: both room-1 " \
                        "members get it, the room-2 member does not." do
    user_token "admin_r1"
    user_token "staff_r1", user_id: 50, role: "staff"
    open_client "a"
    open_client "b", "staff_r1"
    open_client "c"
    subscribe! "a", chat("1")
    subscribe! "b", chat("1")
    subscribe! "c", chat("2")
    message "a", chat("1"), '{"text":"hi <all> & é","action":"speak"}'
    recv "a"
    recv "b"
    silence "c"
  end

  scenario "chat_echo_transmit", profile: :generic,
           description: "The echo action transmits the data hash back to the caller only." do
    user_token "admin_r1"
    open_client "a"
    open_client "b"
    subscribe! "a", chat("1")
    subscribe! "b", chat("1")
    message "a", chat("1"), '{"text":"hi","action":"echo"}'
    recv "a"
    silence "b"
  end

  scenario "message_invalid_actions", profile: :generic,
           description: "Messages that do not reach an action are ignored: no action (no receive defined), empty action, unknown " \
                        "action, framework methods, action with trailing space, data missing, data not a string, data not JSON." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", chat("1")
    ['{"text":"hi"}', '{"action":""}', '{"action":"nope"}', '{"action":"transmit"}', '{"action":"stream_from"}',
     '{"action":"echo "}', '{"action":"ECHO"}', "{not json", "[]"].each do |data|
      message "a", chat("1"), data
      silence "a"
    end
    send_text "a", JSON.generate("command" => "message", "identifier" => chat("1"))
    silence "a"
    send_text "a", JSON.generate("command" => "message", "identifier" => chat("1"), "data" => { "action" => "echo" })
    silence "a"
    message "a", chat("1"), '{"action":"echo"}'
    recv "a"
  end

  scenario "echo_reencoding", profile: :generic,
           description: "Action data is decoded and re-encoded like broadcasts: escapes, floats, big integers, duplicate keys." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", chat("1")
    message "a", chat("1"),
            "{\"action\":\"echo\",\"n\":[1e3, 2.50, 1E-7, 12345678901234567890123, -0.0],\"s\":\"\\u00e9\\/<>&\u2028\u{1F600}\",\"d\":1,\"d\":2}"
    recv "a"
  end

  scenario "identifier_escaping_generic", profile: :generic,
           description: "A room name with <>&, U+2028, non-ASCII and emoji: confirm, echo and speak frames escape the identifier " \
                        "the ActiveSupport way; the Redis stream name carries the raw characters." do
    user_token "admin_r1"
    open_client "a"
    id = ident("channel" => "ChatChannel", "room" => "<1>&é\u2028\u{1F600}")
    subscribe! "a", id
    message "a", id, "{\"text\":\"<hi>\",\"action\":\"echo\"}"
    recv "a"
    message "a", id, "{\"text\":\"<hi>\",\"action\":\"speak\"}"
    recv "a"
    publish_raw "chat_<1>&é\u2028\u{1F600}", '{"from":"redis"}'
    recv "a"
  end

  scenario "two_streams_one_subscription", profile: :generic,
           description: "DualChannel streams lobby and lobby_<restaurant_id> in one subscription: one confirm, both streams " \
                        "delivered with the same identifier, both stop on unsubscribe." do
    user_token "admin_r1"
    open_client "a"
    dual = ident("channel" => "DualChannel")
    subscribe! "a", dual
    publish_raw "lobby", '{"from":"lobby"}'
    recv "a"
    publish_raw "lobby_1", '{"from":"lobby_1"}'
    recv "a"
    publish_raw "lobby_2", '{"from":"lobby_2"}'
    silence "a"
    unsubscribe "a", dual
    silence "a"
    publish_raw "lobby", '{"from":"lobby"}'
    publish_raw "lobby_1", '{"from":"lobby_1"}'
    silence "a"
  end

  scenario "claims_gate", profile: :generic,
           description: "StaffChannel rejects unless the role claim is admin or staff: admin and staff confirm, customer, " \
                        "missing role and a non-string role are rejected." do
    user_token "admin_r1"
    user_token "staff_r1", user_id: 50, role: "staff"
    user_token "customer_r1", user_id: 51, role: "customer"
    token "norole_r1", claims: { "user_id" => 52, "restaurant_id" => 1 }
    user_token "arrayrole_r1", user_id: 53, role: ["admin"]
    staff = ident("channel" => "StaffChannel")
    { "a" => "admin_r1", "b" => "staff_r1", "c" => "customer_r1", "d" => "norole_r1", "e" => "arrayrole_r1" }.each do |c, t|
      open_client c, t
      subscribe! c, staff
    end
    publish_raw "staff_1", '{"for":"staff"}'
    recv "a"
    recv "b"
    silence "c", "d", "e"
  end

  scenario "params_match", profile: :generic,
           description: "TenantChannel confirms when the identifier's restaurant_id equals the connection's as strings (1 or \"1\"), " \
                        "and rejects 2, 1.0, missing and null." do
    user_token "admin_r1"
    open_client "a"
    [1, "1", 2, 1.0, :missing, nil].each do |v|
      h = { "channel" => "TenantChannel" }
      h["restaurant_id"] = v unless v == :missing
      subscribe! "a", ident(h)
    end
  end

  scenario "stream_for_naming", profile: :generic,
           description: "NotesChannel uses stream_for(params[:id]): id 5 and \"5\" both stream notes:5; NotesChannel.broadcast_to " \
                        "publishes to <prefix>:notes:5; a missing id rejects." do
    user_token "admin_r1"
    open_client "a"
    open_client "b"
    subscribe! "a", ident("channel" => "NotesChannel", "id" => 5)
    subscribe! "b", ident("channel" => "NotesChannel", "id" => "5")
    subscribe! "a", ident("channel" => "NotesChannel")
    broadcast_ruby 'NotesChannel.broadcast_to("5", { note: "hi", by: 42 })'
    recv "a"
    recv "b"
  end

  scenario "origin_regex", profile: :generic,
           description: "An unanchored Regexp origin (https://[a-z0-9-]+\\.preview\\.example) matches anywhere in the Origin: " \
                        "allowed, allowed with an evil suffix, refused for http or a bare host; plain listed origin allowed." do
    user_token "admin_r1"
    open_client "a", headers: generic_headers("Origin" => "https://app.preview.example")
    open_client "b", headers: generic_headers("Origin" => "https://app.preview.example.evil.com")
    expect_refused "c", path: cable_path("admin_r1"), headers: generic_headers("Origin" => "http://app.preview.example")
    expect_refused "d", path: cable_path("admin_r1"), headers: generic_headers("Origin" => "https://preview.example")
    open_client "e", headers: generic_headers("Origin" => "http://allowed.example")
    open_client "f", headers: generic_headers("Origin" => "https://hafaloha-orders.com/")
  end

  scenario "broadcast_frame_lengths", profile: :generic,
           description: "Frames needing the 16-bit (126..65535) and 64-bit (>= 65536) payload length encodings." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", chat("1")
    publish_raw "chat_1", JSON.generate("s" => "x" * 200)
    recv "a"
    publish_raw "chat_1", JSON.generate("s" => "y" * 70_000)
    recv "a"
  end
end
