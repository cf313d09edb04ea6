# frozen_string_literal: true

# The reference app for ferrocable's broadcast inputs (issue 12): a Rails app whose Action
# Cable publishes through a database, so the rows and NOTIFYs Rails really writes can be
# recorded (bin/record-inputs) and replayed by bin/test without Ruby.
#
# Environment (set by bin/record-inputs):
#   REFERENCE_INPUT            "solid_cable": Active Record on DATABASE_URL (SQLite, the Rails 8
#                              default, or PostgreSQL); broadcasts INSERT rows
#                              exactly as Solid Cable 3.x/4.x does (lib/solid_cable_writer.rb,
#                              our own code: Solid Cable is not packaged in Debian) and are
#                              delivered in-process;
#                              "postgresql": Active Record on PostgreSQL and Rails' own
#                              PostgreSQL cable adapter (LISTEN/NOTIFY).
#   DATABASE_URL               sqlite3:/path/cable.sqlite3 or postgres://user@host:port/db
#   REFERENCE_CHANNEL_PREFIX   cable.yml's channel_prefix (unset: none)
#   REFERENCE_LOG              log file (default: stdout)
require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "action_cable/engine"

module ReferenceInputs
  INPUT = ENV.fetch("REFERENCE_INPUT")
  abort "REFERENCE_INPUT must be solid_cable or postgresql, not #{INPUT.inspect}" unless %w[solid_cable postgresql].include?(INPUT)

  CHANNEL_PREFIX = ENV["REFERENCE_CHANNEL_PREFIX"].then { |p| p.nil? || p.empty? ? nil : p }

  class Application < Rails::Application
    # [7.2] The defaults of the running release, as a freshly generated app has them.
    config.load_defaults "#{Rails::VERSION::MAJOR}.#{Rails::VERSION::MINOR}"
    config.root = File.expand_path("..", __dir__)
    config.api_only = true
    config.eager_load = true
    config.cache_classes = true
    config.consider_all_requests_local = false
    config.log_level = :debug
    config.logger = ActiveSupport::Logger.new(ENV["REFERENCE_LOG"] || $stdout)
    config.logger.formatter = ::Logger::Formatter.new
    config.secret_key_base = "ferrocable-reference-inputs"
    config.paths["app"] = []
    config.paths["config/initializers"] = []
    config.paths["config/locales"] = []
    config.action_cable.mount_path = "/cable"
    # Development-style, like config/examples/*.toml ([origins] check = false).
    config.action_cable.disable_request_forgery_protection = true
  end
end

lib = File.expand_path("../lib", __dir__)
$LOAD_PATH.unshift(lib)
channels = File.expand_path("../channels", __dir__)
require File.join(channels, "application_cable/connection")
require File.join(channels, "application_cable/channel")
require File.join(channels, "stream_channel")
require File.join(lib, "solid_cable_writer")
require File.join(lib, "control_app")
