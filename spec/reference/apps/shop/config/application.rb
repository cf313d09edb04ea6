# frozen_string_literal: true

# "shop": a Rails 7.2 app on PostgreSQL that authenticates its sockets from the cookie-store
# session (`session[:user_id]`, as openHPI/codeocean does; and Devise/Warden's
# `session["warden.user.user.key"]`), for ferrocable's cookie-authentication reference
# (config/examples/shop.toml, shop-devise.toml). Run as a generated app runs in production,
# with only SECRET_KEY_BASE, DATABASE_URL, REDIS_URL and PORT set.
require_relative "../../shared/application"

module Shop
  class Application < Rails::Application
    ReferenceApps.configure(config, root: File.expand_path("..", __dir__), session_key: "_shop_session")
  end
end
