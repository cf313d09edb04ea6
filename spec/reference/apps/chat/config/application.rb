# frozen_string_literal: true

# "chat": a Campfire-shaped Rails 7.2 app (basecamp/once-campfire's connection and channels,
# rails-apps.md §2.4) on SQLite, for ferrocable's cookie-authentication reference
# (config/examples/chat.toml). Run as a generated app runs in production, with only
# SECRET_KEY_BASE, DATABASE_URL (sqlite3:<file>), REDIS_URL and PORT set.
require_relative "../../shared/application"
# The reference app's minimal Turbo (turbo-rails is not packaged in Debian): the signed stream
# verifier derived from secret_key_base, stream names, broadcast_*_to.
require_relative "../../../channels/turbo/00_turbo"

module Chat
  class Application < Rails::Application
    ReferenceApps.configure(config, root: File.expand_path("..", __dir__), session_key: "_chat_session")

    # Campfire's config/initializers/turbo_streams_authorization.rb (this app loads no
    # initializer files): room message streams only through RoomMessagesChannel.
    config.to_prepare { Turbo::StreamsChannel.prepend(RoomMessagesChannel::StockChannelGuard) }
  end
end
