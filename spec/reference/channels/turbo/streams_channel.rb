# frozen_string_literal: true

# The stock Turbo::StreamsChannel is the chat reference app's, loaded from there so that one
# copy serves both apps: it must stay in the chat app's app/channels, where `ferrocable init`
# reads it as the app's own (spec/init.rs). It needs Turbo::StreamNames and Broadcasts from
# 00_turbo.rb, which this profile loads first.
# ferrocable config: built in ([turbo]); refuse = ["/:messages$/"] mirrors the guard below.
require_relative "../../apps/chat/app/channels/turbo/streams_channel"

# Campfire's guard (a module prepended to Turbo::StreamsChannel): message streams are served
# only by RoomMessagesChannel, which checks who may read them.
module RoomStreamsAreGuarded
  def subscribed
    name = self.class.verified_stream_name(params[:signed_stream_name])
    name.is_a?(String) && name.end_with?(":messages") ? reject : super
  end
end
Turbo::StreamsChannel.prepend(RoomStreamsAreGuarded)
