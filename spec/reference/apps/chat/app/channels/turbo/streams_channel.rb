# frozen_string_literal: true

# turbo-rails' stock channel (turbo-rails is not packaged in Debian; the Turbo module, with
# signed_stream_name, verified_stream_name and broadcast_*_to, is the reference app's own,
# loaded by config/application.rb). Campfire's guard is prepended to it there too.
# The conformance app's turbo profile loads this file as well
# (spec/reference/channels/turbo/streams_channel.rb), with its own guard.
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
