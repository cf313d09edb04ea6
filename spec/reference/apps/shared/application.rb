# frozen_string_literal: true

# What both cookie-authenticated reference apps (chat, shop) share: a generated Rails 7.2
# app's production settings, plus logging where the recorder reads it.
require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "action_cable/engine"
# GlobalID for models (to_gid_param: stream_for, connection identifiers), as `rails/all` loads it.
require "global_id/railtie"

module ReferenceApps
  def self.configure(config, root:, session_key:)
    config.load_defaults 7.2
    config.root = root
    config.eager_load = true
    config.cache_classes = true
    config.consider_all_requests_local = false
    config.logger = ActiveSupport::Logger.new(ENV["APP_LOG"] || $stdout)
    config.log_level = ENV.fetch("APP_LOG_LEVEL", "debug").to_sym
    config.secret_key_base = ENV.fetch("SECRET_KEY_BASE")
    config.paths["config/initializers"] = []
    config.paths["config/locales"] = []
    config.session_store :cookie_store, key: session_key
    # The production default: no allowed_request_origins, same origin as the Host only.
    config.action_cable.mount_path = "/cable"
  end
end
