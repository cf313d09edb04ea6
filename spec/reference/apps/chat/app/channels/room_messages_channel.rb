# frozen_string_literal: true

# Campfire's RoomMessagesChannel: rooms/show renders
# `turbo_stream_from @room, :messages, channel: RoomMessagesChannel`. The signed name is
# verified as Turbo::StreamsChannel verifies it; then the channel streams it only if it is a
# room's message stream ("<room gid param>:messages") and the user is a member of that room.
# The room comes from the verified name, never from a param. The stock channel turns these
# names away (StockChannelGuard), so this check cannot be sidestepped by naming the stock
# channel in the identifier.
class RoomMessagesChannel < ApplicationCable::Channel
  SUFFIX = "messages"

  # Whether a verified name is a room's message stream: what follows its first ":" is
  # exactly "messages".
  def self.guarded_stream?(name)
    name.is_a?(String) && name.split(":", 2).second == SUFFIX
  end

  # Prepended to Turbo::StreamsChannel (config/application.rb): Campfire's
  # turbo_streams_authorization initializer.
  module StockChannelGuard
    def subscribed
      if RoomMessagesChannel.guarded_stream?(self.class.verified_stream_name(params[:signed_stream_name]))
        reject
      else
        super
      end
    end
  end

  def subscribed
    name = Turbo::StreamsChannel.verified_stream_name(params[:signed_stream_name])
    if self.class.guarded_stream?(name) && (room = room_named_by(name)) && current_user.rooms.find_by(id: room.id)
      stream_from name
    else
      reject
    end
  end

  private

  # The room whose GlobalID param starts the name; nil for another model, a room that does
  # not exist, or a part that is no GlobalID.
  def room_named_by(name)
    GlobalID::Locator.locate(name.split(":", 2).first, only: Room)
  rescue ActiveRecord::RecordNotFound, NameError
    nil
  end
end
