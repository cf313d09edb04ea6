# frozen_string_literal: true

require "json"

module ReferenceInputs
  # The SQL Active Record runs, as it ran it (statement text and bound values), for the
  # recorder: schema statements and each broadcast's INSERT.
  module SqlLog
    @entries = []
    @mutex = Mutex.new

    class << self
      def record(payload)
        return if payload[:name] == "SCHEMA" && payload[:sql] =~ /\A\s*(SELECT|PRAGMA)/i

        binds = Array(payload[:type_casted_binds]).map { |b| b.is_a?(String) ? { "text" => b } : { "value" => b } }
        @mutex.synchronize { @entries << { "sql" => payload[:sql], "binds" => binds } }
      end

      def size = @mutex.synchronize { @entries.size }

      def since(n) = @mutex.synchronize { @entries[n..] || [] }
    end
  end

  ActiveSupport::Notifications.subscribe("sql.active_record") do |*, payload|
    SqlLog.record(payload)
  end

  # Control endpoint for bin/record-inputs at /_control (loopback peers only, JSON):
  #
  #   GET  /_control/ping        versions, input, channel prefix, database server
  #   POST /_control/schema      loads Solid Cable's schema; the DDL as run, and sqlite_master and
  #                              journal_mode (SQLite) or the columns (PostgreSQL)
  #   POST /_control/broadcast   {"stream":"chat_1","ruby":"{text: 'hi'}"}:
  #                              ActionCable.server.broadcast(stream, <ruby>); the SQL it ran
  #   GET  /_control/rows        solid_cable_messages as stored: each column's type and hex
  class ControlApp
    LOOPBACK = ["127.0.0.1", "::1"].freeze

    def call(env)
      return reply(403, error: "loopback only") unless LOOPBACK.include?(env["REMOTE_ADDR"])

      req = Rack::Request.new(env)
      body = req.post? ? JSON.parse(req.body.read.then { |s| s.empty? ? "{}" : s }) : {}
      case [req.request_method, req.path_info]
      when ["GET", "/ping"] then reply(200, ping)
      when ["POST", "/schema"] then reply(200, schema)
      when ["POST", "/broadcast"] then reply(200, broadcast(body.fetch("stream"), body.fetch("ruby")))
      when ["GET", "/rows"] then reply(200, rows: rows)
      else reply(404, error: "unknown control #{req.request_method} #{req.path_info}")
      end
    rescue StandardError => e
      reply(500, error: "#{e.class}: #{e.message}", backtrace: e.backtrace.first(5))
    end

    private

    def connection = ActiveRecord::Base.connection

    def ping
      server = connection.select_value(sqlite? ? "SELECT sqlite_version()" : "SHOW server_version")
      { ok: true, input: INPUT, channel_prefix: CHANNEL_PREFIX, rails: Rails.version, ruby: RUBY_VERSION,
        json: JSON::VERSION, adapter: connection.adapter_name, database_server: server,
        driver: sqlite? ? "sqlite3 #{SQLite3::VERSION}" : "pg #{PG::VERSION}",
        os: File.read("/etc/os-release")[/^PRETTY_NAME="?([^"\n]*)/, 1] }
    end

    def sqlite? = connection.adapter_name == "SQLite"

    def schema
      start = SqlLog.size
      CableSchema.load!
      result = { ran: SqlLog.since(start) }
      if sqlite?
        result[:sqlite_master] = connection.select_rows("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'solid_cable_messages' ORDER BY rowid")
        result[:journal_mode] = connection.select_value("PRAGMA journal_mode")
      else
        result[:columns] = connection.select_rows(<<~SQL)
          SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
          WHERE table_name = 'solid_cable_messages' ORDER BY ordinal_position
        SQL
      end
      result
    end

    def broadcast(stream, ruby)
      value = TOPLEVEL_BINDING.eval(ruby)
      start = SqlLog.size
      ActionCable.server.broadcast(stream, value)
      { ran: SqlLog.since(start) }
    end

    # Every column as stored: SQLite's typeof and hex, or PostgreSQL's type and hex.
    def rows
      if sqlite?
        connection.select_rows(<<~SQL)
          SELECT id, typeof(channel), hex(channel), typeof(payload), hex(payload),
                 typeof(created_at), created_at, typeof(channel_hash), channel_hash
          FROM solid_cable_messages ORDER BY id
        SQL
      else
        connection.select_rows(<<~SQL)
          SELECT id, pg_typeof(channel)::text, upper(encode(channel, 'hex')), pg_typeof(payload)::text,
                 upper(encode(payload, 'hex')), pg_typeof(created_at)::text, created_at::text,
                 pg_typeof(channel_hash)::text, channel_hash
          FROM solid_cable_messages ORDER BY id
        SQL
      end
    end

    def reply(status, payload)
      [status, { "content-type" => "application/json" }, [JSON.generate(payload)]]
    end
  end
end
