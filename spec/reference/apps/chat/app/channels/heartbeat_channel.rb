# frozen_string_literal: true

# Campfire's HeartbeatChannel: nothing but the confirm.
class HeartbeatChannel < ApplicationCable::Channel
end
