# frozen_string_literal: true

# "chat": a Campfire-shaped Rails 7.2 app (basecamp/once-campfire's connection and channels,
# rails-apps.md §2.4) on SQLite, for ferrocable's cookie-authentication reference
# (config/examples/chat.toml). Run as a generated app runs in production, with only
# SECRET_KEY_BASE, DATABASE_URL (sqlite3:<file>), REDIS_URL and PORT set.
require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "action_cable/engine"
# GlobalID for models (to_gid_param: stream_for, connection identifiers), as `rails/all` loads it.
require "global_id/railtie"

module Chat
  class Application < Rails::Application
    config.load_defaults 7.2
    config.root = File.expand_path("..", __dir__)
    config.eager_load = true
    config.cache_classes = true
    config.consider_all_requests_local = false
    config.logger = ActiveSupport::Logger.new(ENV["APP_LOG"] || $stdout)
    config.log_level = :debug
    config.secret_key_base = ENV.fetch("SECRET_KEY_BASE")
    config.paths["config/initializers"] = []
    config.paths["config/locales"] = []
    # A generated app's session store (`_chat_session`); Campfire's login cookie is its own
    # signed cookie, session_token.
    config.session_store :cookie_store, key: "_chat_session"
    config.action_cable.mount_path = "/cable"
    # The production default: no allowed_request_origins, same origin as the Host only.
  end
end
