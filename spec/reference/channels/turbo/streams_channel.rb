# frozen_string_literal: true

# ferrocable config: built in ([turbo]); refuse = ["/:messages$/"] mirrors the guard below.
module Turbo
  class StreamsChannel < ActionCable::Channel::Base
    extend StreamNames
    extend Broadcasts

    def subscribed
      if (stream_name = self.class.verified_stream_name(params[:signed_stream_name]))
        stream_from stream_name
      else
        reject
      end
    end
  end
end

# Campfire's guard (a module prepended to Turbo::StreamsChannel): message streams are served
# only by RoomMessagesChannel, which checks who may read them.
module RoomStreamsAreGuarded
  def subscribed
    name = self.class.verified_stream_name(params[:signed_stream_name])
    name.is_a?(String) && name.end_with?(":messages") ? reject : super
  end
end
Turbo::StreamsChannel.prepend(RoomStreamsAreGuarded)
