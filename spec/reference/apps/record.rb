# frozen_string_literal: true

# Records the cookie-authenticated reference apps (chat on SQLite, shop on PostgreSQL) on
# Rails 7.2 and writes fixtures/apps/<app>/rails-7.2/<scenario>.json plus the database state
# the transcripts need (fixtures/apps/<app>/database.sql). Invoked by bin/record-apps.
#
#   ruby spec/reference/apps/record.rb [--only chat,shop] [--keep-tmp]
#
# Reuses the conformance recorder's session (../recorder/harness.rb: connect, subscribe,
# recv, ...) and adds logging in over HTTP: the recorder POSTs to the app's login route,
# keeps the cookies Rails set, and opens the socket with them, as a browser would. The
# recorder, redis-server and PostgreSQL run on the host; puma (Rails 7.2) runs in the trixie
# chroot, which shares the host's loopback.

require "fileutils"
require "json"
require "net/http"
require "optparse"
require "socket"
require "tmpdir"
require_relative "../recorder/harness"

module AppRecorder
  ROOT = File.expand_path("../../..", __dir__)
  CHROOT_REPO = "/ferrocable"
  SECRET_KEY_BASE = "ferrocable-apps-secret-key-base-1d7c3e9a5b0f2468ace13579bdf02468ace1357"
  # Inside the repo (target/ is ignored) so that the chroot sees the SQLite file too.
  WORK = File.join(ROOT, "target/tmp/record-apps")

  APPS = {
    "chat" => { database: :sqlite, prefix: "chat_production", host: "chat.test" },
    "shop" => { database: :postgres, prefix: "shop_production", host: "shop.test" }
  }.freeze

  Scenario = Struct.new(:name, :app, :config, :description, :block, keyword_init: true)

  class << self
    def scenarios
      @scenarios ||= []
    end

    def scenario(name, app:, config:, description:, &block)
      raise "duplicate scenario #{name}" if scenarios.any? { |s| s.name == name }

      scenarios << Scenario.new(name: name, app: app, config: config, description: description, block: block)
    end
  end

  # What an app scenario adds to the conformance session: HTTP logins and cookie headers.
  module Logins
    attr_writer :app_host

    # POSTs to the app like a browser's form would and keeps the cookies it set (name =>
    # value, as the browser would send them back). Recorded as an `http_login` step, which
    # replayers skip: the cookies are in the connect steps' headers.
    def login(path)
      uri = URI("http://127.0.0.1:#{@stack.app_port}#{path}")
      req = Net::HTTP::Post.new(uri)
      req["Host"] = @app_host
      res = Net::HTTP.new(uri.host, uri.port).request(req)
      raise Recorder::ScenarioError, "login #{path}: #{res.code}" unless res.code.start_with?("2")

      cookies = (res.get_fields("set-cookie") || []).to_h { |c| c.split(";", 2).first.split("=", 2) }
      @steps << { "op" => "http_login", "request" => "POST #{path}", "status" => res.code.to_i, "cookies" => cookies }
      cookies
    end

    # Ruby run in the app; returns its String result (to mint the odd cookie).
    def app_eval(code)
      control("POST", "/eval", "ruby" => code)["result"]
    end

    # The headers a same-origin page sends: the app's host, its Origin, and the cookies.
    def browser_headers(cookies)
      headers = { "Host" => @app_host, "Origin" => "http://#{@app_host}" }
      headers["Cookie"] = cookies.map { |k, v| "#{k}=#{v}" }.join("; ") unless cookies.empty?
      headers
    end

    def identifier(channel, **params)
      JSON.generate({ "channel" => channel }.merge(params.transform_keys(&:to_s)))
    end
  end

  class Runner
    def initialize(only:, keep_tmp:)
      @only = only
      @keep_tmp = keep_tmp
      @pids = []
      FileUtils.rm_rf(WORK)
      FileUtils.mkdir_p(WORK)
    end

    def run
      require_relative "scenarios"
      redis_port = free_port
      spawn_logged("redis", "redis-server", "--port", redis_port.to_s, "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no")
      redis_url = "redis://127.0.0.1:#{redis_port}/0"
      wait_until("redis") { Redis.new(url: redis_url).ping == "PONG" rescue false }
      redis_version = Redis.new(url: redis_url).info("server")["redis_version"]
      publishes, monitor = publish_capture(redis_url)
      failures = []
      AppRecorder.scenarios.group_by(&:app).each do |app, scenarios|
        next if @only && !@only.include?(app)

        database_url = prepare_database(app)
        port = free_port
        pid = start_app(app, port, redis_url, database_url)
        ping = wait_until("#{app} on #{port}", timeout: 90) { app_ping(port) }
        versions = ping.merge("redis" => redis_version)
        versions["database"] = database_version(app)
        out = File.join(ROOT, "fixtures/apps", app, "rails-7.2")
        FileUtils.rm_rf(out)
        FileUtils.mkdir_p(out)
        stack = Recorder::Stack.new(app_port: port, redis_url: redis_url, profile: app, rails: "7.2",
                                    prefix: APPS.fetch(app)[:prefix], publishes: publishes, versions: versions)
        scenarios.each do |sc|
          session = Recorder::Session.new(sc, stack)
          session.extend(Logins)
          session.app_host = APPS.fetch(app)[:host]
          begin
            session.instance_exec(&sc.block)
            write(out, sc, session, versions)
            warn format("  ok   %-36s", sc.name)
          rescue StandardError => e
            failures << sc.name
            warn format("  FAIL %-36s %s", sc.name, "#{e.class}: #{e.message}")
            warn e.backtrace.first(4).map { |l| "         #{l}" }.join("\n")
          ensure
            session.close_all
            sleep 0.2
          end
        end
        stop(pid)
        dump_database(app)
      end
      monitor.kill
      abort "FAILED: #{failures.join(', ')} (logs in #{WORK})" unless failures.empty?
    ensure
      @pids.reverse_each { |p| stop(p) }
      stop_postgres
      FileUtils.rm_rf(WORK) unless @keep_tmp || !failures.to_a.empty?
    end

    private

    def write(out, sc, session, versions)
      doc = {
        "scenario" => sc.name,
        "description" => sc.description,
        "recorded_with" => versions,
        "config" => sc.config,
        "database" => "fixtures/apps/#{sc.app}/database.sql",
        "secret_key_base" => SECRET_KEY_BASE,
        "tokens" => {},
        "steps" => session.steps
      }
      lines = doc.map do |k, v|
        if k == "steps"
          "  \"steps\": [\n#{v.map { |s| "    #{JSON.generate(s)}" }.join(",\n")}\n  ]"
        else
          "  #{JSON.generate(k)}: #{JSON.generate(v)}"
        end
      end
      File.write(File.join(out, "#{sc.name}.json"), "{\n#{lines.join(",\n")}\n}\n")
    end

    # ---- databases ----------------------------------------------------------------
    def app_dir(app)
      File.join(ROOT, "spec/reference/apps", app)
    end

    def prepare_database(app)
      schema = File.read(File.join(app_dir(app), "db/schema.sql"))
      seeds = File.read(File.join(app_dir(app), "db/seeds.sql"))
      case APPS.fetch(app)[:database]
      when :sqlite
        @sqlite = File.join(WORK, "#{app}.sqlite3")
        IO.popen(["sqlite3", @sqlite], "w") { |io| io.write(schema, seeds) }
        raise "sqlite3 failed" unless $?.success?

        "sqlite3:#{@sqlite.sub(ROOT, CHROOT_REPO)}"
      when :postgres
        @pg_port = free_port
        @pg_dir = Dir.mktmpdir("ferrocable-record-pg-")
        FileUtils.chown("postgres", "postgres", @pg_dir) if Process.uid.zero?
        as_postgres("#{pg_bin}/initdb", "-D", "#{@pg_dir}/data", "-A", "trust", "-U", "postgres", "--no-sync")
        @pg_pid = Process.spawn(*pg_user, "#{pg_bin}/postgres", "-D", "#{@pg_dir}/data", "-p", @pg_port.to_s,
                                "-k", @pg_dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                out: File.join(WORK, "postgres.log"), err: File.join(WORK, "postgres.log"))
        wait_until("postgres") { system("pg_isready", "-q", "-h", "127.0.0.1", "-p", @pg_port.to_s) }
        psql("postgres", "CREATE DATABASE #{app}")
        psql(app, schema + seeds)
        "postgres://postgres@127.0.0.1:#{@pg_port}/#{app}"
      end
    end

    def database_version(app)
      case APPS.fetch(app)[:database]
      when :sqlite then "SQLite #{`sqlite3 --version`.split.first}"
      when :postgres then `#{pg_bin}/postgres --version`.strip
      end
    end

    # The state the transcripts need, as SQL: what replayers load before starting ferrocable.
    def dump_database(app)
      file = File.join(ROOT, "fixtures/apps", app, "database.sql")
      sql = case APPS.fetch(app)[:database]
            when :sqlite then `sqlite3 #{@sqlite} .dump`
            when :postgres
              `pg_dump --inserts --no-owner --no-privileges --no-comments -h 127.0.0.1 -p #{@pg_port} -U postgres #{app}`
            end
      raise "dumping #{app} failed" unless $?.success?

      # psql meta-commands (pg_dump's \restrict) are not SQL.
      sql = sql.lines.reject { |l| l.start_with?("\\") }.join
      File.write(file, "-- #{app}: the database state its transcripts were recorded against (bin/record-apps).\n#{sql}")
    end

    def pg_bin
      @pg_bin ||= Dir["/usr/lib/postgresql/*/bin"].max_by { |d| d[/\d+/].to_i } || abort("install postgresql")
    end

    def pg_user
      # setpriv execs, so the PID we hold is the server's own (signals reach it).
      Process.uid.zero? ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] : []
    end

    def as_postgres(*cmd)
      system(*pg_user, *cmd, out: File::NULL) || raise("#{cmd.first} failed")
    end

    def psql(db, sql)
      IO.popen(["psql", "-q", "-o", File::NULL, "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", @pg_port.to_s, "-U", "postgres", db], "w") { |io| io.write(sql) }
      raise "psql failed" unless $?.success?
    end

    def stop_postgres
      return unless @pg_pid

      Process.kill("INT", @pg_pid)
      Process.wait(@pg_pid)
      FileUtils.rm_rf(@pg_dir)
      @pg_pid = nil
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end

    # ---- processes -------------------------------------------------------------------
    def start_app(app, port, redis_url, database_url)
      env = { "SECRET_KEY_BASE" => SECRET_KEY_BASE, "DATABASE_URL" => database_url, "REDIS_URL" => redis_url,
              "RAILS_ENV" => "production", "RACK_ENV" => "production" }
      cmd = [File.join(ROOT, "bin/rails-chroot"), "run", "-C", "#{CHROOT_REPO}/spec/reference/apps/#{app}"]
      env.each { |k, v| cmd += ["-e", "#{k}=#{v}"] }
      cmd += ["--", "puma", "-e", "production", "-b", "tcp://127.0.0.1:#{port}", "-t", "0:16", "config.ru"]
      spawn_logged("puma-#{app}", *cmd, env: { "FERROCABLE_CHROOT_REPO" => ROOT })
    end

    def app_ping(port)
      res = Net::HTTP.get_response(URI("http://127.0.0.1:#{port}/_control/ping"))
      res.code == "200" ? JSON.parse(res.body) : nil
    rescue SystemCallError, IOError, EOFError
      nil
    end

    def publish_capture(redis_url)
      queue = Recorder::EventQueue.new
      ready = Recorder::EventQueue.new
      thread = Thread.new do
        Redis.new(url: redis_url).psubscribe("*") do |on|
          on.psubscribe { ready.push(true) }
          on.pmessage { |_p, ch, payload| queue.push([ch.dup.force_encoding("UTF-8"), payload.dup.force_encoding("UTF-8")]) }
        end
      rescue StandardError
        nil
      end
      ready.pop(5) or abort("publish capture did not start")
      [queue, thread]
    end

    def spawn_logged(name, *cmd, env: {})
      log = File.join(WORK, "#{name}.out")
      pid = Process.spawn(env, *cmd, chdir: ROOT, out: log, err: log, pgroup: true)
      @pids << pid
      pid
    end

    def stop(pid)
      return unless @pids.delete(pid)

      Process.kill("TERM", pid)
      deadline = mono + 10
      until Process.waitpid(pid, Process::WNOHANG)
        if mono > deadline
          Process.kill("KILL", pid)
          Process.waitpid(pid)
          break
        end
        sleep 0.05
      end
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end

    def free_port
      s = TCPServer.new("127.0.0.1", 0)
      s.addr[1]
    ensure
      s&.close
    end

    def wait_until(what, timeout: 20)
      deadline = mono + timeout
      loop do
        v = yield
        return v if v
        abort "timed out waiting for #{what} (logs in #{WORK})" if mono > deadline

        sleep 0.1
      end
    end

    def mono
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end

if $PROGRAM_NAME == __FILE__
  opts = { only: nil, keep_tmp: false }
  OptionParser.new do |o|
    o.banner = "usage: record.rb [--only chat,shop] [--keep-tmp]"
    o.on("--only APPS", Array) { |v| opts[:only] = v }
    o.on("--keep-tmp") { opts[:keep_tmp] = true }
  end.parse!
  $stdout.sync = $stderr.sync = true
  AppRecorder::Runner.new(**opts).run
end
