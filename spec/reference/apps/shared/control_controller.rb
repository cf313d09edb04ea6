# frozen_string_literal: true

# Loopback-only hooks for the recorder: what the app itself would broadcast.
class ControlController < ActionController::Base
  skip_forgery_protection
  before_action { head :forbidden unless request.remote_ip == "127.0.0.1" }

  def ping
    render json: { rails: Rails.version, ruby: RUBY_VERSION, puma: Puma::Const::PUMA_VERSION,
                   websocket_driver: Gem.loaded_specs["websocket-driver"]&.version.to_s,
                   json: JSON::VERSION, os: File.read("/etc/os-release")[/PRETTY_NAME="(.*)"/, 1] }
  end

  # {"ruby": "<code>"}: RoomChannel.broadcast_to(Room.find(1), ...), or a value to return.
  def eval
    result = Kernel.eval(params.require(:ruby)) # rubocop:disable Security/Eval
    render json: { result: result.is_a?(String) ? result : nil }
  end
end
