# frozen_string_literal: true

require "json"
require "jwt"
require "net/http"
require "redis"
require "uri"
require_relative "ws_client"

module Recorder
  SECRET_KEY_BASE = "ferrocable-reference-secret-key-base-7f3c9a1e5b2d4c6e8a0f1b3d5c7e9a2b"
  DEFAULT_SILENCE_MS = 500
  RECV_TIMEOUT_S = 5
  PING_RE = /\A\{"type":"ping","message":(\d+)\}\z/.freeze

  # A profile is one way of booting the reference app (its environment) and the ferrocable
  # config that mirrors it. hafaloha_routes is the hafaloha app with Hafaloha's own
  # `mount ActionCable.server => "/cable"` in its routes (see config/routes.rb).
  PROFILES = {
    hafaloha: { config: "fixtures/configs/hafaloha.toml", prefix: "shimizu_order_suite_production",
                app_env: { "REFERENCE_PROFILE" => "hafaloha" } },
    hafaloha_routes: { config: "fixtures/configs/hafaloha.toml", prefix: "shimizu_order_suite_production",
                       app_env: { "REFERENCE_PROFILE" => "hafaloha", "REFERENCE_MOUNT" => "routes" } },
    generic: { config: "fixtures/configs/generic.toml", prefix: "ferrocable_generic_production",
               app_env: { "REFERENCE_PROFILE" => "generic" } },
    # Turbo Streams and CableReady (scenarios_turbo.rb); turbo_sha1 keeps the key generator on
    # PBKDF2-SHA1 under load_defaults 7.2 (one config serves both: ferrocable tries both keys).
    turbo: { config: "fixtures/configs/turbo.toml", prefix: "ferrocable_turbo_production",
             app_env: { "REFERENCE_PROFILE" => "turbo" } },
    turbo_sha1: { config: "fixtures/configs/turbo.toml", prefix: "ferrocable_turbo_production",
                  app_env: { "REFERENCE_PROFILE" => "turbo", "REFERENCE_KEY_DIGEST" => "sha1" } }
  }.freeze

  # Action Cable's own refusal (docs/PROTOCOL.md §1.2): anything else that is not a 101 was
  # answered by the Rails app's router (a path outside the mount).
  ACTION_CABLE_404_BODY = "Page not found"

  class ScenarioError < StandardError; end

  # description: a String, or a Hash by Rails version where the versions behave differently.
  # versions: the Rails versions it is recorded on (all by default).
  Scenario = Struct.new(:name, :profile, :description, :versions, :block, keyword_init: true) do
    def description_for(rails)
      description.is_a?(Hash) ? description.fetch(rails) : description
    end
  end

  class << self
    def scenarios
      @scenarios ||= []
    end

    def scenario(name, profile:, description:, versions: %w[7.2 6.1], &block)
      raise "duplicate scenario #{name}" if scenarios.any? { |s| s.name == name }
      raise "#{name}: description per version must cover #{versions}" if description.is_a?(Hash) && !(versions - description.keys).empty?

      scenarios << Scenario.new(name: name, profile: profile, description: description, versions: versions, block: block)
    end
  end

  # Everything a scenario needs to reach the running stack. rails: "7.2" or "6.1".
  Stack = Struct.new(:app_port, :redis_url, :profile, :rails, :prefix, :publishes, :versions, keyword_init: true)

  # Runs one scenario block and accumulates its transcript steps.
  class Session
    attr_reader :steps, :tokens

    def initialize(scenario, stack)
      @scenario = scenario
      @stack = stack
      @steps = []
      @tokens = {}
      @minted = {}
      @clients = {}
      @last_ping_at = {}
    end

    def prefix
      @stack.prefix
    end

    # "7.2" or "6.1": only for the few scenarios that do something only one version supports.
    def rails
      @stack.rails
    end

    # ---- tokens -----------------------------------------------------------------
    # Registers a token spec; {{token:NAME}} in paths and headers is replaced by a token
    # minted now (the replayer mints its own from the same spec).
    def token(name, claims:, alg: "HS256", secret: :default, exp_in: 3600, nbf_in: nil)
      secret = SECRET_KEY_BASE if secret == :default
      secret = nil if alg == "none"
      spec = { "alg" => alg, "secret" => secret, "claims" => claims }
      spec["exp_in"] = exp_in unless exp_in.nil?
      spec["nbf_in"] = nbf_in unless nbf_in.nil?
      @tokens[name.to_s] = spec
      now = Time.now.to_i
      payload = claims.dup
      payload["exp"] = now + exp_in unless exp_in.nil?
      payload["nbf"] = now + nbf_in unless nbf_in.nil?
      @minted[name.to_s] = alg == "none" ? JWT.encode(payload, nil, "none") : JWT.encode(payload, secret, alg)
    end

    def expand(str)
      str.gsub(/\{\{token:([A-Za-z0-9_]+)\}\}/) do
        @minted.fetch(Regexp.last_match(1)) { raise ScenarioError, "unknown token #{Regexp.last_match(1)}" }
      end
    end

    # ---- connections --------------------------------------------------------------
    # headers: the scenario-specific headers, recorded as given. A nil value removes one of
    # the defaults (Host, Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version).
    # Returns the client name.
    def connect(client, path:, headers: {}, websocket: true, method: "GET")
      client = client.to_s
      raise ScenarioError, "client #{client} already connected" if @clients.key?(client)

      step = { "op" => "connect", "client" => client, "path" => path, "headers" => headers }
      step["websocket"] = false unless websocket
      step["method"] = method unless method == "GET"
      @steps << step

      defaults = [["Host", "127.0.0.1:#{@stack.app_port}"]]
      if websocket
        defaults += [["Upgrade", "websocket"], ["Connection", "Upgrade"],
                     ["Sec-WebSocket-Key", WsClient::KEY], ["Sec-WebSocket-Version", "13"]]
      end
      overrides = headers.transform_keys(&:to_s)
      sent = defaults.filter_map do |k, v|
        o = overrides.find { |ok, _| ok.casecmp?(k) }
        o ? (o[1].nil? ? nil : [k, expand(o[1])]) : [k, v]
      end
      overrides.each do |k, v|
        next if v.nil? || defaults.any? { |dk, _| dk.casecmp?(k) }

        sent << [k, expand(v)]
      end

      ws = WsClient.new(client, "127.0.0.1", @stack.app_port)
      resp = ws.request(method, expand(path), sent, websocket: websocket)
      @clients[client] = ws
      rec = { "op" => "http_response", "client" => client, "status" => resp[:status] }
      if resp[:status] == 101
        rec["headers"] = { "Sec-WebSocket-Protocol" => ws.header(resp[:headers], "Sec-WebSocket-Protocol") }
      else
        rec["headers"] = { "Content-Type" => ws.header(resp[:headers], "Content-Type") }
        rec["body"] = resp[:body]
        # Not Action Cable's 404: the app's router answered (a path outside the mount).
        rec["answered_by"] = "rails_app" unless resp[:body] == ACTION_CABLE_404_BODY
        @clients.delete(client)
      end
      @steps << rec
      client
    end

    def ws(client)
      @clients.fetch(client.to_s) { raise ScenarioError, "no open client #{client}" }
    end

    # ---- client -> server ---------------------------------------------------------
    def send_text(client, text)
      @steps << { "op" => "send", "client" => client.to_s, "text" => text }
      ws(client).send_text(text)
    end

    # {"command":"subscribe","identifier":<identifier>} with the JSON-escaping of JSON.stringify.
    def subscribe(client, identifier)
      send_text(client, command("subscribe", identifier))
    end

    def unsubscribe(client, identifier)
      send_text(client, command("unsubscribe", identifier))
    end

    def message(client, identifier, data)
      send_text(client, command("message", identifier, data))
    end

    def command(cmd, identifier, data = nil)
      h = { "command" => cmd, "identifier" => identifier }
      h["data"] = data unless data.nil?
      JSON.generate(h)
    end

    def send_binary(client, bytes)
      @steps << { "op" => "send_binary", "client" => client.to_s, "base64" => Base64.strict_encode64(bytes.b) }
      ws(client).send_binary(bytes)
    end

    def send_raw(client, bytes, note: nil)
      step = { "op" => "send_raw", "client" => client.to_s, "base64" => Base64.strict_encode64(bytes.b) }
      step["note"] = note if note
      @steps << step
      ws(client).send_raw(bytes)
    end

    def send_ping(client, payload)
      @steps << { "op" => "send_ping", "client" => client.to_s, "base64" => Base64.strict_encode64(payload.b) }
      ws(client).send_ping(payload)
    end

    # code nil: a close frame with no payload at all (no status code), which is what a
    # browser's ws.close() and @rails/actioncable's consumer.disconnect() send.
    def send_close(client, code = 1000, reason = "")
      step = { "op" => "send_close", "client" => client.to_s, "code" => code }
      step["reason"] = reason unless code.nil?
      @steps << step
      ws(client).send_close(code, reason)
    end

    # ---- server -> client ---------------------------------------------------------
    # Next event other than an Action Cable ping.
    def next_event(client, timeout = RECV_TIMEOUT_S, keep_pings: false)
      deadline = mono + timeout
      loop do
        left = deadline - mono
        ev = left.positive? ? ws(client).events.pop(left) : nil
        return nil if ev.nil?
        raise ScenarioError, ev[1] if ev[0] == :violation
        return ev if keep_pings
        next if ev[0] == :text && ev[1].match?(PING_RE)

        return ev
      end
    end

    def describe(ev)
      ev.nil? ? "nothing" : ev.inspect
    end

    # Records the next n text frames (pings stripped). Fails on anything else.
    def recv(client, n = 1, any_order: false)
      got = Array.new(n) do
        ev = next_event(client)
        raise ScenarioError, "#{client}: expected a text frame, got #{describe(ev)}" unless ev && ev[0] == :text

        ev[1]
      end
      got = got.sort if any_order
      got.each do |text|
        step = { "op" => "recv", "client" => client.to_s, "text" => text }
        step["any_order"] = true if any_order
        @steps << step
      end
      got
    end

    # Records Action Cable pings (ping-cadence scenario only).
    def recv_pings(client, n)
      n.times do
        ev = next_event(client, 5, keep_pings: true)
        unless ev && ev[0] == :text && (m = ev[1].match(PING_RE))
          raise ScenarioError, "#{client}: expected a ping, got #{describe(ev)}"
        end

        at = mono
        step = { "op" => "recv_ping", "client" => client.to_s, "message_type" => "integer" }
        if (prev = @last_ping_at[client.to_s])
          step["gap_s"] = (at - prev).round
        end
        @last_ping_at[client.to_s] = at
        @steps << step
      end
    end

    def recv_pong(client)
      ev = next_event(client)
      raise ScenarioError, "#{client}: expected a pong, got #{describe(ev)}" unless ev && ev[0] == :pong

      @steps << { "op" => "recv_pong", "client" => client.to_s, "base64" => Base64.strict_encode64(ev[1]) }
    end

    # The server's close frame, then (after echoing it if the server waits for that) EOF.
    def recv_close(client, echo: :auto)
      ev = next_event(client)
      raise ScenarioError, "#{client}: expected a close frame, got #{describe(ev)}" unless ev && ev[0] == :close

      @steps << { "op" => "recv_close", "client" => client.to_s, "code" => ev[1], "reason" => ev[2] }
      # Does the server drop TCP on its own, or wait for our close frame?
      ev2 = next_event(client, 1.0)
      if ev2.nil? && echo
        send_close(client, ev[1] || 1000)
        ev2 = next_event(client)
      end
      raise ScenarioError, "#{client}: expected EOF after close, got #{describe(ev2)}" unless ev2 && ev2[0] == :eof

      closed(client)
    end

    # Records whatever text frames come before the server's close frame (none on one Rails
    # version, a disconnect frame on another), then the close as recv_close does.
    def recv_frames_then_close(client)
      loop do
        ev = next_event(client)
        raise ScenarioError, "#{client}: expected frames then a close, got #{describe(ev)}" unless ev

        break ws(client).events.unshift(ev) if ev[0] == :close
        raise ScenarioError, "#{client}: expected a text or close frame, got #{describe(ev)}" unless ev[0] == :text

        @steps << { "op" => "recv", "client" => client.to_s, "text" => ev[1] }
      end
      recv_close(client)
    end

    # Subscribes and records what follows within the silence window: the reply frame if one
    # comes (confirm or reject), else the silence. For identifiers whose outcome differs
    # between Rails versions; everywhere else scenarios say what they expect.
    def subscribe_and_record(client, identifier)
      subscribe(client, identifier)
      ev = next_event(client, DEFAULT_SILENCE_MS / 1000.0)
      if ev.nil?
        @steps << { "op" => "silence", "client" => client.to_s, "ms" => DEFAULT_SILENCE_MS }
      elsif ev[0] == :text
        @steps << { "op" => "recv", "client" => client.to_s, "text" => ev[1] }
        silence(client)
      else
        raise ScenarioError, "#{client}: expected a reply or silence, got #{describe(ev)}"
      end
    end

    # Connects and records the outcome, whichever it is: 101 and the welcome, or the refusal.
    def connect_and_record(client, path:, headers:)
      connect(client, path: path, headers: headers)
      recv(client) if @clients.key?(client.to_s)
    end

    # Waits until Redis has an internal channel (<prefix>:action_cable/<connection identifier>)
    # whose identifier contains `part`, and returns its full name. For identifiers whose
    # format differs between versions (a false identifier is dropped from 7.0).
    def wait_for_internal_channel(part)
      deadline = mono + RECV_TIMEOUT_S
      loop do
        found = redis.pubsub("channels", "#{prefix}:action_cable/*").select { |c| c.include?(part) }
        raise ScenarioError, "several internal channels match #{part}: #{found}" if found.size > 1
        return found.first if found.size == 1
        raise ScenarioError, "no internal channel with #{part}" if mono > deadline

        sleep 0.02
      end
    end

    # Waits for EOF (server closed TCP) without any close frame.
    def expect_eof(client)
      ev = next_event(client)
      raise ScenarioError, "#{client}: expected EOF, got #{describe(ev)}" unless ev && ev[0] == :eof

      closed(client)
    end

    def closed(client)
      @steps << { "op" => "closed", "client" => client.to_s }
      @clients.delete(client.to_s)&.close
    end

    # Nothing but pings may arrive on any of the clients for ms.
    def silence(*clients, ms: DEFAULT_SILENCE_MS)
      sleep(ms / 1000.0)
      clients.each do |c|
        loop do
          ev = ws(c).events.pop(0)
          break if ev.nil?
          next if ev[0] == :text && ev[1].match?(PING_RE)

          raise ScenarioError, "#{c}: expected silence for #{ms} ms, got #{describe(ev)}"
        end
        @steps << { "op" => "silence", "client" => c.to_s, "ms" => ms }
      end
    end

    # ---- Redis / control ----------------------------------------------------------
    def redis
      @redis ||= Redis.new(url: @stack.redis_url)
    end

    # PUBLISH <prefix>:<stream> <payload> straight to Redis (what redis-cli would send).
    def publish_raw(stream, payload, full_channel: false)
      channel = full_channel ? stream : "#{prefix}:#{stream}"
      @stack.publishes.drain
      redis.publish(channel, payload)
      @steps << { "op" => "publish", "channel" => channel, "payload" => payload, "via" => "redis-cli" }
    end

    # ActionCable.server.broadcast(stream, ActiveSupport::JSON.decode(json)) in the app;
    # records the exact bytes it PUBLISHed.
    def broadcast(stream, json)
      capture_publishes(1) { control("POST", "/broadcast", "stream" => stream, "json" => json) }
        .each { |ch, payload| @steps << publish_step(ch, payload, "ActionCable.server.broadcast") }
    end

    # Evaluates Ruby in the app (ActionCable.server.broadcast / Channel.broadcast_to with
    # Ruby objects); records each PUBLISH it caused.
    def broadcast_ruby(code, count: 1)
      capture_publishes(count) { control("POST", "/eval", "ruby" => code) }
        .each { |ch, payload| @steps << publish_step(ch, payload, "ActionCable.server.broadcast").merge("ruby" => code) }
    end

    def publish_step(channel, payload, via)
      { "op" => "publish", "channel" => channel, "payload" => payload, "via" => via }
    end

    # reconnect: nil for the plain disconnect; true/false for disconnect(reconnect:) (7.1+).
    def remote_disconnect(identifiers, reconnect: nil)
      body = { "identifiers" => identifiers }
      body["reconnect"] = reconnect unless reconnect.nil?
      pubs = capture_publishes(1) { control("POST", "/remote_disconnect", body) }
      step = { "op" => "control", "action" => "remote_disconnect", "identifiers" => identifiers }
      step["reconnect"] = reconnect unless reconnect.nil?
      step["published"] = pubs.map { |ch, p| { "channel" => ch, "payload" => p } }
      @steps << step
    end

    def server_restart
      @steps << { "op" => "control", "action" => "server_restart" }
      control("POST", "/restart", {})
    end

    # Waits until Redis has a subscriber on <prefix>:<name> (e.g. an internal channel).
    def wait_for_subscription(name, full_channel: false)
      channel = full_channel ? name : "#{prefix}:#{name}"
      deadline = mono + RECV_TIMEOUT_S
      until redis.pubsub("numsub", channel).last.to_i.positive?
        raise ScenarioError, "nobody subscribed #{channel}" if mono > deadline

        sleep 0.02
      end
    end

    def capture_publishes(count)
      @stack.publishes.drain
      yield
      Array.new(count) do
        item = @stack.publishes.pop(RECV_TIMEOUT_S)
        raise ScenarioError, "expected #{count} PUBLISH(es), saw fewer" unless item

        item
      end.tap do
        sleep 0.05
        extra = @stack.publishes.drain
        raise ScenarioError, "unexpected extra PUBLISH #{extra.inspect}" unless extra.empty?
      end
    end

    def control(method, path, body)
      uri = URI("http://127.0.0.1:#{@stack.app_port}/_control#{path}")
      http = Net::HTTP.new(uri.host, uri.port)
      req = method == "POST" ? Net::HTTP::Post.new(uri) : Net::HTTP::Get.new(uri)
      if method == "POST"
        req["Content-Type"] = "application/json"
        req.body = JSON.generate(body)
      end
      res = http.request(req)
      raise ScenarioError, "control #{path} failed: #{res.code} #{res.body}" unless res.code == "200"

      JSON.parse(res.body)
    end

    def pause(ms)
      sleep(ms / 1000.0)
    end

    def close_all
      @clients.each_value(&:close)
      @clients.clear
      @redis&.close
    end

    private

    def mono
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
