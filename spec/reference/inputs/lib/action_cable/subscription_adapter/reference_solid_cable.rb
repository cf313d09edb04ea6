# frozen_string_literal: true

require "action_cable/subscription_adapter/async"
require "action_cable/subscription_adapter/channel_prefix"

module ActionCable
  module SubscriptionAdapter
    # cable.yml `adapter: reference_solid_cable`: writes each broadcast as Solid Cable does
    # (ReferenceInputs::CableMessage, channel prefix included, as Solid Cable's adapter
    # prepends ChannelPrefix) and delivers it in-process, so a client of this app receives
    # exactly what a Solid Cable listener would hand Action Cable for that row (the payload
    # string it wrote).
    class ReferenceSolidCable < Async
      prepend ChannelPrefix

      def broadcast(channel, payload)
        ::ReferenceInputs::CableMessage.write(channel, payload)
        super
      end
    end
  end
end
