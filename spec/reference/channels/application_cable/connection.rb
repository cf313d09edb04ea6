# frozen_string_literal: true

module ApplicationCable
  # Mirrors Shimizu Order Suite's connection (hafaloha.md §2), claims-only (§8):
  #   token      request.params[:token] (query string only; no header, no cookie)
  #   verify     ruby-jwt, HS256 only, key = the raw SECRET_KEY_BASE string; exp/nbf checked
  #              when present, leeway 0
  #   identity   current_user = User.new(claims["user_id"]), restaurant_id = claims["restaurant_id"]
  # Any failure (no token, malformed, bad signature, expired, nbf in the future, other alg,
  # alg none, user_id or restaurant_id missing/null, unexpected error) -> reject_unauthorized_connection.
  class Connection < ActionCable::Connection::Base
    identified_by :current_user, :restaurant_id

    # The decoded JWT payload, for channels that gate on a claim (generic StaffChannel).
    attr_reader :claims

    def connect
      claims = verified_claims
      reject_unauthorized_connection if claims.nil?
      reject_unauthorized_connection if claims["user_id"].nil? || claims["restaurant_id"].nil?

      @claims = claims
      self.current_user = User.new(claims["user_id"])
      self.restaurant_id = claims["restaurant_id"]
      logger.info "Authenticated #{connection_identifier}"
    end

    private

    def verified_claims
      token = request.params[:token]
      if token.nil?
        logger.error "WebSocket authentication failed - No token provided"
        return nil
      end

      payload, _header = JWT.decode(token, Rails.application.secret_key_base, true, algorithm: "HS256")
      unless payload.is_a?(Hash)
        logger.error "WebSocket authentication failed - payload is not an object"
        return nil
      end
      payload
    rescue JWT::DecodeError => e
      logger.error "WebSocket authentication failed - JWT decode error - #{e.class}: #{e.message}"
      nil
    rescue StandardError => e
      # Shimizu Order Suite rescues everything here and rejects too.
      logger.error "WebSocket authentication failed - Unexpected error - #{e.class}: #{e.message}"
      nil
    end
  end
end
