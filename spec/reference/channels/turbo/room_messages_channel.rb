# frozen_string_literal: true

# A custom Turbo channel (`turbo_stream_from @room, :messages, channel: RoomMessagesChannel`):
# the same signed name, then the channel's own check. Campfire checks room membership in the
# database; here the check is the connection's role claim, which ferrocable expresses today.
# ferrocable config:
#   [channels.RoomMessagesChannel]  signed_stream.verifier = "turbo", claims_in = { role = ["admin", "staff"] }
class RoomMessagesChannel < ApplicationCable::Channel
  def subscribed
    stream_name = Turbo::StreamsChannel.verified_stream_name(params[:signed_stream_name])
    if stream_name && %w[admin staff].include?(connection.claims["role"])
      stream_from stream_name
    else
      reject
    end
  end
end
