# frozen_string_literal: true

require "json"

module ReferenceCable
  # Control interface for bin/record-fixtures, mounted at /_control on the same puma.
  # Loopback peers only. Every endpoint answers JSON.
  #
  #   GET  /_control/ping                     -> {"ok":true,"profile":...,"prefix":...}
  #   POST /_control/broadcast                {"stream":"order_channel_1","json":"{...}"}
  #        ActionCable.server.broadcast(stream, ActiveSupport::JSON.decode(json))
  #   POST /_control/eval                     {"ruby":"ActionCable.server.broadcast(...)"}
  #        evaluates Ruby in the app (for publisher-side types: BigDecimal, Time, broadcast_to)
  #   POST /_control/remote_disconnect        {"identifiers":{"current_user":42,"restaurant_id":1},"reconnect":false}
  #        ActionCable.server.remote_connections.where(current_user: User.new(42), restaurant_id: 1)
  #          .disconnect(reconnect: false)          ("reconnect" optional; the keyword is 7.1+)
  #   POST /_control/restart                  ActionCable.server.restart
  #   GET  /_control/connections              connection identifiers registered with the server
  class ControlApp
    LOOPBACK = ["127.0.0.1", "::1"].freeze

    def call(env)
      return reply(403, error: "loopback only") unless LOOPBACK.include?(env["REMOTE_ADDR"])

      req = Rack::Request.new(env)
      body = req.post? ? JSON.parse(req.body.read.then { |s| s.empty? ? "{}" : s }) : {}
      case [req.request_method, req.path_info]
      when ["GET", "/ping"]
        reply(200, ok: true, profile: PROFILE, prefix: CHANNEL_PREFIX, mount: MOUNT,
                   rails: Rails.version, ruby: RUBY_VERSION, json: JSON::VERSION, puma: Puma::Const::PUMA_VERSION,
                   websocket_driver: Gem::Specification.find_by_name("websocket-driver").version.to_s,
                   os: File.read("/etc/os-release")[/^PRETTY_NAME="?([^"\n]*)/, 1])
      when ["POST", "/broadcast"]
        ActionCable.server.broadcast(body.fetch("stream"), ActiveSupport::JSON.decode(body.fetch("json")))
        reply(200, ok: true)
      when ["POST", "/eval"]
        result = TOPLEVEL_BINDING.eval(body.fetch("ruby"))
        reply(200, ok: true, result: result.inspect)
      when ["POST", "/remote_disconnect"]
        ids = body.fetch("identifiers").to_h { |k, v| [k.to_sym, k == "current_user" ? User.new(v) : v] }
        remote = ActionCable.server.remote_connections.where(**ids)
        # [6.1/7.2] disconnect(reconnect:) exists from 7.1; 6.1's takes no argument.
        body.key?("reconnect") ? remote.disconnect(reconnect: body["reconnect"]) : remote.disconnect
        reply(200, ok: true)
      when ["POST", "/restart"]
        ActionCable.server.restart
        reply(200, ok: true)
      when ["GET", "/connections"]
        reply(200, ok: true, connections: ActionCable.server.connections.map(&:connection_identifier))
      else
        reply(404, error: "unknown control #{req.request_method} #{req.path_info}")
      end
    rescue StandardError => e
      reply(500, error: "#{e.class}: #{e.message}", backtrace: e.backtrace.first(5))
    end

    private

    def reply(status, payload)
      # Lower-case header names: Rack 3 (Rails 7.2) requires them, Rack 2 accepts them.
      [status, { "content-type" => "application/json" }, [JSON.generate(payload)]]
    end
  end
end
