# frozen_string_literal: true

# The reference Rails app for ferrocable's conformance suite: a database-less, API-only
# Rails 6.1 application whose only job is to run the real ActionCable.server on puma.
#
# Environment (all set by bin/record-fixtures):
#   REFERENCE_PROFILE      "hafaloha" (the six Hafaloha channels; fixtures/configs/hafaloha.toml)
#                          or "generic" (test channels; fixtures/configs/generic.toml)
#                          or "bench" (BenchChannel for bin/bench; docs/benchmarks/ferrocable-bench.toml)
#                          or "turbo" (our minimal Turbo::StreamsChannel, RoomMessagesChannel,
#                          CableReady::Stream; fixtures/configs/turbo.toml)
#   REFERENCE_KEY_DIGEST   "sha1": key generator on PBKDF2-SHA1 whatever load_defaults says
#                          (profile turbo_sha1; channels/turbo/00_turbo.rb)
#   REDIS_URL              redis://127.0.0.1:<port>/0
#   SECRET_KEY_BASE        raw string used as the HS256 key (not hex-decoded)
#   REFERENCE_MOUNT        "engine" (default): Action Cable's engine mounts /cable itself
#                          (config.action_cable.mount_path), as in a generated app;
#                          "routes": the app also has `mount ActionCable.server => "/cable"`
#                          in its routes, as Hafaloha does (config/routes.rb)
#   REFERENCE_LOG          log file (default: stdout)
require "rails"
require "action_controller/railtie"
require "action_cable/engine"
require "globalid"
require "jwt"

module ReferenceCable
  PROFILE = ENV.fetch("REFERENCE_PROFILE", "hafaloha")
  unless %w[hafaloha generic bench turbo].include?(PROFILE)
    abort "REFERENCE_PROFILE must be hafaloha, generic, bench or turbo, not #{PROFILE.inspect}"
  end

  MOUNT = ENV.fetch("REFERENCE_MOUNT", "engine")
  abort "REFERENCE_MOUNT must be engine or routes, not #{MOUNT.inspect}" unless %w[engine routes].include?(MOUNT)

  # Redis channel_prefix per profile (cable.yml reads it from here).
  CHANNEL_PREFIX = {
    "hafaloha" => "shimizu_order_suite_production",
    "generic" => "ferrocable_generic_production",
    "bench" => "ferrocable_bench_production",
    "turbo" => "ferrocable_turbo_production"
  }.fetch(PROFILE)

  # hafaloha.md §1: the effective production list (localhost dev ports without a trailing
  # slash; every https origin with and without one). Exact string comparison.
  HAFALOHA_ORIGINS = [
    "http://localhost:5173",
    "http://localhost:5174",
    "http://localhost:5175",
    *%w[
      https://hafaloha-orders.com
      https://hafaloha.netlify.app
      https://hafaloha-lvmt0.kinsta.page
      https://shimizu-order-suite.netlify.app
      https://house-of-chin-fe.netlify.app
      https://crab-daddy.netlify.app
      https://shimizu-order-suite.com
    ].flat_map { |o| [o, "#{o}/"] }
  ].freeze

  # The generic profile adds one plain origin and one unanchored Regexp (Ruby's Regexp#===
  # matches anywhere in the string, so "https://x.preview.example.evil.com" also passes).
  GENERIC_EXTRA_ORIGINS = [
    "http://allowed.example",
    %r{https://[a-z0-9-]+\.preview\.example}
  ].freeze

  class Application < Rails::Application
    # [6.1/7.2] The defaults of the running release, as a freshly generated app has them
    # ("6.1" or "7.2"; Hafaloha, a 7.2 app, runs load_defaults 7.2).
    config.load_defaults "#{Rails::VERSION::MAJOR}.#{Rails::VERSION::MINOR}"
    config.root = File.expand_path("..", __dir__)
    config.api_only = true
    config.eager_load = true
    config.cache_classes = true
    config.consider_all_requests_local = false
    # The bench profile logs warnings only: Action Cable logs every transmission at debug,
    # which would measure the logger (ferrocable's bench config runs at "warn" too).
    config.log_level = PROFILE == "bench" ? :warn : :debug
    config.logger = ActiveSupport::Logger.new(ENV["REFERENCE_LOG"] || $stdout)
    config.logger.formatter = ::Logger::Formatter.new
    config.secret_key_base = ENV.fetch("SECRET_KEY_BASE")
    # Nothing under app/ is autoloaded: channels are required explicitly per profile below.
    config.paths["app"] = []
    config.paths["config/initializers"] = []
    config.paths["config/locales"] = []

    # GlobalID app name of Shimizu Order Suite (module ShimizuOrderSuite): User 42 is
    # gid://shimizu-order-suite/User/42. The globalid railtie reads this setting.
    config.global_id.app = "shimizu-order-suite"

    config.action_cable.mount_path = "/cable"
    config.action_cable.allow_same_origin_as_host = true
    config.action_cable.disable_request_forgery_protection = false
    config.action_cable.allowed_request_origins =
      PROFILE == "hafaloha" ? HAFALOHA_ORIGINS.dup : HAFALOHA_ORIGINS + GENERIC_EXTRA_ORIGINS
  end
end

channels = File.expand_path("../channels", __dir__)
require File.join(channels, "user")
require File.join(channels, "application_cable/connection")
require File.join(channels, "application_cable/channel")
Dir[File.join(channels, ReferenceCable::PROFILE, "*.rb")].sort.each { |f| require f }
require File.expand_path("../lib/control_app", __dir__)
