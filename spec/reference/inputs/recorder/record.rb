# frozen_string_literal: true

# Records what a Rails 7.2 app publishing through a database really writes, and what its
# Action Cable clients receive, for ferrocable's broadcast-input specs (spec/inputs_*.rs).
# Run by bin/record-inputs (which starts PostgreSQL and the app); by hand:
#
#   ruby spec/reference/inputs/recorder/record.rb --input postgresql --port 3091 \
#     --pg-log /tmp/pg/postgres.log --out fixtures/inputs/rails-7.2/postgresql.json
#
# For every case (a stream and a Ruby value) it subscribes a raw WebSocket client to
# StreamChannel on that stream, waits for the confirm, has the app run
# ActionCable.server.broadcast(stream, value), and keeps the frame(s) the client got. Then:
#   solid_cable  the INSERT Active Record ran (text and binds) and the row as SQLite stored
#                it (typeof and hex of every column); the schema statements and journal mode;
#   postgresql   the LISTEN and NOTIFY statements Rails ran, read from PostgreSQL's own
#                statement log (log_statement = all), in order.
# The output is deterministic except for created_at and the puma pid in application_name.

require "json"
require "net/http"
require "optparse"
require_relative "../../recorder/ws_client"

module InputsRecorder
  # [name, stream, Ruby expression for the broadcast value]
  CASES = [
    ["hash", "chat_1", "{ text: 'hello' }"],
    ["escapes", "chat_1", %q({ html: "<b>Tom & Jerry</b>", quote: %q(it's "quoted"), path: "/a/b", nl: "a\nb" })],
    ["unicode", "chat_1", %q({ s: "café \u{1F600} \u2028 sep" })],
    ["string", "chat_1", "'just a string'"],
    ["integer", "chat_1", "42"],
    ["array", "chat_1", "[1, 2.5, nil, true, 1.0e20]"],
    ["numbers", "chat_1", "{ big: 12345678901234567890123, float: 0.1 + 0.2, decimal: BigDecimal('12.50') }"],
    ["time", "chat_1", "{ at: Time.utc(2024, 1, 2, 3, 4, 5) }"],
    ["turbo_stream", "Z2lkOi8vcmVmYXBwL0NoYXQvMQ",
     %q(%q(<turbo-stream action="append" target="messages"><template><p id="m_1">hi &amp; bye</p></template></turbo-stream>))],
    ["second_stream", "orders_7", "{ id: 1, restaurant_id: 7 }"],
    ["long_stream", "notifications:Z2lkOi8vcmVmYXBwL1VzZXIvNDI:Z2lkOi8vcmVmYXBwL09yZGVyLzEyMzQ1", "{ long: true }"],
    ["multibyte_stream", "é" * 40, "{ wide: true }"]
  ].freeze

  class Runner
    def initialize(input:, port:, pg_log:, out:)
      @input = input
      @port = port
      @pg_log = pg_log
      @out = out
    end

    def run
      ping = get("/_control/ping")
      result = { "recorded_with" => ping.slice("rails", "ruby", "json", "adapter", "database_server", "driver", "os"),
                 "input" => @input, "channel_prefix" => ping["channel_prefix"] }
      result["schema"] = post("/_control/schema", {}) if @input == "solid_cable"
      pg_mark = File.size?(@pg_log).to_i if @pg_log
      clients = {}
      cases = CASES.map do |name, stream, ruby|
        identifier = JSON.generate({ "channel" => "StreamChannel", "stream" => stream })
        client = clients[stream] ||= subscribe(stream, identifier)
        ran = post("/_control/broadcast", { "stream" => stream, "ruby" => ruby }).fetch("ran")
        frames = receive(client, expected_frames(name))
        c = { "name" => name, "stream" => stream, "identifier" => identifier, "ruby" => ruby, "frames" => frames }
        # Rails' PostgreSQL adapter bypasses Active Record's instrumentation: its NOTIFYs
        # come from PostgreSQL's log below.
        c["sql"] = ran if @input == "solid_cable"
        c
      end
      clients.each_value(&:close)
      if @input == "solid_cable"
        rows = get("/_control/rows").fetch("rows")
        raise "expected #{cases.size} rows, got #{rows.size}" unless rows.size == cases.size

        cases.zip(rows).each { |c, row| c["row"] = stored_row(row) }
      else
        statements = pg_statements(pg_mark)
        result["listen"] = statements.select { |s| s.start_with?("LISTEN ") }
        notifies = statements.select { |s| s.start_with?("NOTIFY ") }
        raise "expected #{cases.size} NOTIFYs, got #{notifies.size}" unless notifies.size == cases.size

        cases.zip(notifies).each { |c, n| c["notify"] = n }
        result["application_name"] = statements.find { |s| s.start_with?("SET application_name") }
      end
      result["cases"] = cases
      File.write(@out, "#{JSON.pretty_generate(result)}\n")
      warn "record-inputs: wrote #{@out} (#{cases.size} cases)"
    end

    private

    # Rails 7.2's PostgreSQL adapter keeps a channel of at most 63 characters as is, but
    # PostgreSQL cuts identifiers at 63 bytes: a multibyte name's notifications arrive under
    # the cut name, which Rails' listener does not know, so its clients get nothing
    # (recorded as such; ferrocable delivers them, spec/KNOWN_DIFFERENCES.md).
    def expected_frames(name)
      @input == "postgresql" && name == "multibyte_stream" ? 0 : 1
    end

    def http(req)
      Net::HTTP.start("127.0.0.1", @port, read_timeout: 30) do |h|
        res = h.request(req)
        body = JSON.parse(res.body)
        raise "control #{req.path}: #{res.code} #{body}" unless res.code == "200"

        body
      end
    end

    def get(path) = http(Net::HTTP::Get.new(path))

    def post(path, payload)
      req = Net::HTTP::Post.new(path, "content-type" => "application/json")
      req.body = JSON.generate(payload)
      http(req)
    end

    def subscribe(stream, identifier)
      client = Recorder::WsClient.new("client-#{stream[0, 12]}", "127.0.0.1", @port)
      res = client.request("GET", "/cable",
                           [["Host", "127.0.0.1:#{@port}"], ["Upgrade", "websocket"], ["Connection", "Upgrade"],
                            ["Sec-WebSocket-Key", Recorder::WsClient::KEY], ["Sec-WebSocket-Version", "13"],
                            ["Sec-WebSocket-Protocol", "actioncable-v1-json, actioncable-unsupported"]],
                           websocket: true)
      raise "#{stream}: upgrade answered #{res[:status]}" unless res[:status] == 101

      expect_text(client, %({"type":"welcome"}))
      client.send_text(JSON.generate({ "command" => "subscribe", "identifier" => identifier }))
      confirm = JSON.generate({ "identifier" => identifier, "type" => "confirm_subscription" })
      expect_text(client, confirm.gsub("<", "\\u003c").gsub(">", "\\u003e").gsub("&", "\\u0026"))
      client
    end

    # The next n text frames that are not pings, then 300 ms of silence.
    def receive(client, n)
      frames = []
      while frames.size < n
        text = next_text(client, 5) or raise "#{client.name}: no frame within 5 s"
        frames << text
      end
      extra = next_text(client, 0.3)
      raise "#{client.name}: unexpected extra frame #{extra}" if extra

      frames
    end

    def next_text(client, timeout)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        return nil if left <= 0

        event = client.events.pop(left) or return nil
        raise "#{client.name}: #{event.inspect}" unless event[0] == :text
        next if event[1].start_with?('{"type":"ping"')

        return event[1]
      end
    end

    def expect_text(client, expected)
      got = next_text(client, 5)
      raise "#{client.name}: expected #{expected}, got #{got.inspect}" unless got == expected
    end

    def stored_row(row)
      id, ctype, chex, ptype, phex, ttype, tval, htype, hval = row
      { "id" => Integer(id), "channel" => { "type" => ctype, "hex" => chex }, "payload" => { "type" => ptype, "hex" => phex },
        "created_at" => { "type" => ttype, "value" => tval }, "channel_hash" => { "type" => htype, "value" => Integer(hval) } }
    end

    # Statements from PostgreSQL's log after byte offset `mark` (log_line_prefix '%a|',
    # log_statement all): "<application>|LOG:  statement: <sql>", continuation lines
    # indented with a tab.
    def pg_statements(mark)
      text = File.binread(@pg_log).byteslice(mark..).force_encoding("UTF-8")
      statements = []
      text.each_line do |line|
        if (m = line.match(/\A[^|]*\|LOG:  statement: (.*)\n?\z/m))
          statements << m[1].chomp
        elsif line.start_with?("\t") && statements.any?
          statements[-1] = "#{statements[-1]}\n#{line.delete_prefix("\t").chomp}"
        end
      end
      statements
    end
  end
end

if $PROGRAM_NAME == __FILE__
  opts = { pg_log: nil }
  OptionParser.new do |o|
    o.on("--input NAME") { |v| opts[:input] = v }
    o.on("--port N", Integer) { |v| opts[:port] = v }
    o.on("--pg-log PATH") { |v| opts[:pg_log] = v }
    o.on("--out PATH") { |v| opts[:out] = v }
  end.parse!
  InputsRecorder::Runner.new(**opts).run
end
