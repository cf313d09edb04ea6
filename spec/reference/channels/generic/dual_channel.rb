# frozen_string_literal: true

# Two stream_from in one subscription; confirm waits for both Redis SUBSCRIBEs.
# ferrocable config: [channels.DualChannel] streams = ["lobby", "lobby_{restaurant_id}"]
class DualChannel < ApplicationCable::Channel
  def subscribed
    stream_from "lobby"
    stream_from "lobby_#{restaurant_id}"
  end

  def unsubscribed
  end
end
