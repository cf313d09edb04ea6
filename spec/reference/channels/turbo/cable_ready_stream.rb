# frozen_string_literal: true

# CableReady's stream channel, as cable_ready 5 defines it (its own salt, the signed name under
# the `identifier` key, a present? check). ferrocable config, no code:
#   [channels."CableReady::Stream".signed_stream]  verifier = "cable_ready"
module CableReady
  class << self
    def signed_stream_verifier
      @signed_stream_verifier ||= ActiveSupport::MessageVerifier.new(
        Rails.application.key_generator.generate_key("cable_ready/verifier_key"),
        digest: "SHA256", serializer: JSON
      )
    end
  end

  class Stream < ActionCable::Channel::Base
    def subscribed
      stream_name = CableReady.signed_stream_verifier.verified(params[:identifier])
      if stream_name.present?
        stream_from stream_name
      else
        reject
      end
    end
  end
end
