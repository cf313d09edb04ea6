# frozen_string_literal: true

# Drives the reference stack and writes fixtures/transcripts/rails-<version>/*.json.
# Invoked by bin/record-fixtures (which installs the Debian packages and the chroot first).
#
#   ruby spec/reference/recorder/record.rb [--rails 7.2|6.1] [--only NAME[,NAME...]] [--out DIR] [--keep-tmp]
#
# The recorder itself always runs on the host (Ruby 3.1, redis-rb, ruby-jwt) and so does
# redis-server; only the app under test changes: Rails 6.1 is the host's puma, Rails 7.2 is
# puma inside the trixie chroot (bin/rails-chroot run), which shares the host's loopback.

require "fileutils"
require "json"
require "optparse"
require "socket"
require "tmpdir"
require_relative "harness"
require_relative "scenarios"
require_relative "scenarios_turbo"

module Recorder
  ROOT = File.expand_path("../../..", __dir__)
  APP_DIR = File.join(ROOT, "spec/reference")

  # Rails versions we record, and how to start the app on each.
  RAILS_VERSIONS = %w[7.2 6.1].freeze
  CHROOT_REPO = "/ferrocable" # where bin/rails-chroot mounts the repo

  class Runner
    def initialize(rails:, only:, out:, keep_tmp:)
      @rails = rails
      @only = only
      @out = out || File.join(ROOT, "fixtures/transcripts", "rails-#{rails}")
      @keep_tmp = keep_tmp
      @pids = []
      @tmp = Dir.mktmpdir("ferrocable-record-")
    end

    def run
      started = mono
      known = Recorder.scenarios.map(&:name)
      missing = (@only || []) - known
      abort "unknown scenario(s): #{missing.join(', ')}" unless missing.empty?
      selected = Recorder.scenarios.select { |s| s.versions.include?(@rails) && (@only.nil? || @only.include?(s.name)) }
      skipped = (@only || []) - selected.map(&:name)
      warn "not on Rails #{@rails}: #{skipped.join(', ')}" unless skipped.empty?
      abort "no scenarios selected" if selected.empty?

      redis_port = free_port
      spawn_logged("redis", "redis-server", "--port", redis_port.to_s, "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--daemonize", "no")
      redis_url = "redis://127.0.0.1:#{redis_port}/0"
      wait_until("redis on #{redis_port}") { Redis.new(url: redis_url).ping == "PONG" rescue false }
      redis_version = Redis.new(url: redis_url).info("server")["redis_version"]
      publishes, monitor = start_publish_capture(redis_url)

      FileUtils.mkdir_p(@out)
      failures = []
      written = 0
      selected.group_by(&:profile).each do |profile, scenarios|
        app_port = free_port
        pid = start_app(profile, app_port, redis_url)
        ping = wait_until("reference app (#{profile}) on #{app_port}", timeout: 60) { app_ping(app_port) }
        unless ping["rails"].start_with?("#{@rails}.")
          abort "asked for Rails #{@rails}, but the app runs Rails #{ping['rails']}"
        end
        # The exact release first: replayers take the Rails version of a transcript from here.
        versions = {
          "rails" => ping["rails"], "ruby" => ping["ruby"], "websocket_driver" => ping["websocket_driver"],
          "json" => ping["json"], "puma" => ping["puma"], "redis" => redis_version, "os" => ping["os"]
        }
        stack = Stack.new(app_port: app_port, redis_url: redis_url, profile: profile, rails: @rails,
                          prefix: PROFILES.fetch(profile)[:prefix], publishes: publishes, versions: versions)
        scenarios.each do |sc|
          t0 = mono
          session = Session.new(sc, stack)
          begin
            session.instance_exec(&sc.block)
            write_transcript(sc, session, versions)
            written += 1
            warn format("  ok   %-48s %5.1fs", sc.name, mono - t0)
          rescue StandardError => e
            failures << sc.name
            warn format("  FAIL %-48s %s", sc.name, "#{e.class}: #{e.message}")
            warn e.backtrace.first(4).map { |l| "         #{l}" }.join("\n") unless e.is_a?(ScenarioError)
          ensure
            session.close_all
            sleep 0.2 # let the server run handle_close before the next scenario
          end
        end
        stop(pid)
      end
      monitor.kill
      warn format("wrote %d transcript(s) to %s in %.1fs", written, @out, mono - started)
      unless failures.empty?
        warn "FAILED: #{failures.join(', ')} (logs kept in #{@tmp})"
        @keep_tmp = true
        exit 1
      end
    ensure
      @pids.reverse_each { |p| stop(p) }
      if @keep_tmp
        warn "logs: #{@tmp}"
      else
        FileUtils.rm_rf(@tmp)
      end
    end

    private

    def write_transcript(sc, session, versions)
      doc = {
        "scenario" => sc.name,
        "description" => sc.description_for(@rails),
        "recorded_with" => versions,
        "config" => PROFILES.fetch(sc.profile)[:config],
        "secret_key_base" => SECRET_KEY_BASE,
        "tokens" => session.tokens,
        "steps" => session.steps
      }
      File.write(File.join(@out, "#{sc.name}.json"), render(doc))
    end

    # Pretty at the top level, one line per step: stable and diff-friendly.
    def render(doc)
      lines = doc.map do |k, v|
        if k == "steps"
          inner = v.map { |s| "    #{JSON.generate(s)}" }.join(",\n")
          "  #{JSON.generate(k)}: [\n#{inner}\n  ]"
        elsif k == "tokens" && !v.empty?
          inner = v.map { |n, t| "    #{JSON.generate(n)}: #{JSON.generate(t)}" }.join(",\n")
          "  #{JSON.generate(k)}: {\n#{inner}\n  }"
        else
          "  #{JSON.generate(k)}: #{JSON.generate(v)}"
        end
      end
      "{\n#{lines.join(",\n")}\n}\n"
    end

    # The Rails log goes to puma's stdout, i.e. <tmp>/puma-<profile>.out (a path that means
    # the same inside and outside the chroot).
    def start_app(profile, port, redis_url)
      env = PROFILES.fetch(profile)[:app_env].merge(
        "REDIS_URL" => redis_url, "SECRET_KEY_BASE" => SECRET_KEY_BASE,
        "RAILS_ENV" => "production", "RACK_ENV" => "production"
      )
      puma = ["puma", "-e", "production", "-b", "tcp://127.0.0.1:#{port}", "-t", "0:16", "config.ru"]
      if @rails == "6.1"
        spawn_logged("puma-#{profile}", *puma, env: env, chdir: APP_DIR)
      else
        # `run` execs down to puma: the PID spawned here is puma's, so stop() reaches it.
        chroot = [File.join(ROOT, "bin/rails-chroot"), "run", "-C", "#{CHROOT_REPO}/spec/reference"]
        env.each { |k, v| chroot += ["-e", "#{k}=#{v}"] }
        spawn_logged("puma-#{profile}", *chroot, "--", *puma, env: { "FERROCABLE_CHROOT_REPO" => ROOT })
      end
    end

    def app_ping(port)
      res = Net::HTTP.get_response(URI("http://127.0.0.1:#{port}/_control/ping"))
      res.code == "200" ? JSON.parse(res.body) : nil
    rescue SystemCallError, IOError, EOFError
      nil
    end

    # A psubscribe("*") connection: every PUBLISH with its exact channel and payload bytes.
    def start_publish_capture(redis_url)
      queue = EventQueue.new
      ready = EventQueue.new
      thread = Thread.new do
        Redis.new(url: redis_url).psubscribe("*") do |on|
          on.psubscribe { ready.push(true) }
          on.pmessage do |_pattern, channel, payload|
            queue.push([channel.dup.force_encoding("UTF-8"), payload.dup.force_encoding("UTF-8")])
          end
        end
      rescue StandardError
        nil
      end
      ready.pop(5) or abort("publish capture did not start")
      [queue, thread]
    end

    def spawn_logged(name, *cmd, env: {}, chdir: ROOT)
      log = File.join(@tmp, "#{name}.out")
      pid = Process.spawn(env, *cmd, chdir: chdir, out: log, err: log, pgroup: true)
      @pids << pid
      pid
    end

    def stop(pid)
      return unless @pids.include?(pid)

      @pids.delete(pid)
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

    def wait_until(what, timeout: 15)
      deadline = mono + timeout
      loop do
        v = yield
        return v if v
        abort "timed out waiting for #{what} (logs in #{@tmp})" if mono > deadline

        sleep 0.1
      end
    end

    def mono
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end

if $PROGRAM_NAME == __FILE__
  opts = { rails: "7.2", only: nil, out: nil, keep_tmp: false }
  list = false
  OptionParser.new do |o|
    o.banner = "usage: record.rb [--rails 7.2|6.1] [--only a,b] [--out DIR] [--keep-tmp] [--list]"
    o.on("--rails VERSION", Recorder::RAILS_VERSIONS) { |v| opts[:rails] = v }
    o.on("--only NAMES", Array) { |v| opts[:only] = v }
    o.on("--out DIR") { |v| opts[:out] = File.expand_path(v) }
    o.on("--keep-tmp") { opts[:keep_tmp] = true }
    o.on("--list") { list = true }
  end.parse!
  if list
    Recorder.scenarios.select { |s| s.versions.include?(opts[:rails]) }.each do |s|
      puts format("%-40s %-15s %s", s.name, s.profile, s.description_for(opts[:rails]))
    end
    exit
  end
  $stdout.sync = $stderr.sync = true
  Recorder::Runner.new(**opts).run
end
