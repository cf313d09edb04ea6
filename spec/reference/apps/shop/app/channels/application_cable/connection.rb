# frozen_string_literal: true

# The cookie-store session, read as openHPI/codeocean reads it, with Devise/Warden's key as
# the alternative: current_user from session[:user_id] or session["warden.user.user.key"].
module ApplicationCable
  class Connection < ActionCable::Connection::Base
    identified_by :current_user

    def connect
      self.current_user = User.find_by(id: session_user_id) || reject_unauthorized_connection
    end

    private

    def session_user_id
      session = cookies.encrypted[Rails.application.config.session_options[:key]] || {}
      session["user_id"] || session.dig("warden.user.user.key", 0, 0)
    end
  end
end
