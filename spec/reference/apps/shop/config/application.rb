# frozen_string_literal: true

# "shop": a Rails 7.2 app on PostgreSQL that authenticates its sockets from the cookie-store
# session (`session[:user_id]`, as openHPI/codeocean does; and Devise/Warden's
# `session["warden.user.user.key"]`), for ferrocable's cookie-authentication reference
# (config/examples/shop.toml, shop-devise.toml). Run as a generated app runs in production,
# with only SECRET_KEY_BASE, DATABASE_URL, REDIS_URL and PORT set.
require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "action_cable/engine"
# GlobalID for models (to_gid_param: stream_for, connection identifiers), as `rails/all` loads it.
require "global_id/railtie"

module Shop
  class Application < Rails::Application
    config.load_defaults 7.2
    config.root = File.expand_path("..", __dir__)
    config.eager_load = true
    config.cache_classes = true
    config.consider_all_requests_local = false
    config.logger = ActiveSupport::Logger.new(ENV["APP_LOG"] || $stdout)
    config.log_level = ENV.fetch("APP_LOG_LEVEL", "debug").to_sym
    config.secret_key_base = ENV.fetch("SECRET_KEY_BASE")
    config.paths["config/initializers"] = []
    config.paths["config/locales"] = []
    config.session_store :cookie_store, key: "_shop_session"
    config.action_cable.mount_path = "/cable"
  end
end
