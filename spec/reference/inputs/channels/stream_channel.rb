# frozen_string_literal: true

# The one channel of config/examples/*.toml: [channels.StreamChannel]
# streams = ["{params.stream}"], require_params = ["stream"].
class StreamChannel < ApplicationCable::Channel
  def subscribed
    if params[:stream].present?
      stream_from params[:stream]
    else
      reject
    end
  end
end
