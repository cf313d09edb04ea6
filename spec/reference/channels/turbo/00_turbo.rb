# frozen_string_literal: true

# Our own minimal Turbo Streams server side, written from turbo-rails' behaviour
# (shared/docs/rails-apps.md §1; turbo-rails is not packaged in Debian). It produces exactly what
# turbo-rails does on the wire: the signed stream names that `turbo_stream_from` renders and
# the HTML strings that `broadcast_*_to` publishes. Profile `turbo` (fixtures/configs/turbo.toml).
#
# REFERENCE_KEY_DIGEST=sha1 (profile turbo_sha1, Rails 7.2 only) keeps the key generator on
# PBKDF2-SHA1 under load_defaults 7.2: the key an app ends up with when something touched
# Rails.application.key_generator before the after_initialize hook (rails/rails#51750), or an
# upgraded app that never flipped new_framework_defaults_7_0.rb.
if ENV["REFERENCE_KEY_DIGEST"] == "sha1"
  Rails.application.config.active_support.key_generator_hash_digest_class = OpenSSL::Digest::SHA1
end

module Turbo
  class << self
    # turbo-rails derives its key after initialization (v1.1.1+), from the app's key generator,
    # unless config.turbo.signed_stream_verifier_key is set. Ours is derived on first use,
    # which is after Rails.application.initialize! for every caller.
    def signed_stream_verifier
      @signed_stream_verifier ||= ActiveSupport::MessageVerifier.new(
        Rails.application.key_generator.generate_key("turbo/signed_stream_verifier_key"),
        digest: "SHA256", serializer: JSON
      )
    end
  end

  module StreamNames
    # Arrays join their parts with ":"; a record gives its GlobalID param, anything else to_param.
    def stream_name_from(streamables)
      if streamables.is_a?(Array)
        streamables.map { |part| stream_name_from(part) }.join(":")
      else
        streamables.try(:to_gid_param) || streamables.to_param
      end
    end

    # What `turbo_stream_from(*streamables)` puts in signed-stream-name.
    def signed_stream_name(streamables)
      Turbo.signed_stream_verifier.generate(stream_name_from(streamables))
    end

    def verified_stream_name(signed_stream_name)
      Turbo.signed_stream_verifier.verified(signed_stream_name)
    end
  end

  # The broadcast half: the <turbo-stream> element turbo-rails renders, published as a string.
  module Broadcasts
    def broadcast_action_to(*streamables, action:, target: nil, targets: nil, attributes: {}, html: nil)
      body = %i[remove refresh].include?(action.to_sym) ? "" : tags.template(html.to_s.html_safe)
      place = target ? { target: target } : targets ? { targets: targets } : {}
      element = tags.turbo_stream(body, **attributes, action: action, **place)
      broadcast_stream_to(*streamables, content: element)
    end

    def broadcast_append_to(*streamables, **options)
      broadcast_action_to(*streamables, action: :append, **options)
    end

    def broadcast_prepend_to(*streamables, **options)
      broadcast_action_to(*streamables, action: :prepend, **options)
    end

    def broadcast_replace_to(*streamables, **options)
      broadcast_action_to(*streamables, action: :replace, **options)
    end

    def broadcast_update_to(*streamables, **options)
      broadcast_action_to(*streamables, action: :update, **options)
    end

    def broadcast_remove_to(*streamables, **options)
      broadcast_action_to(*streamables, action: :remove, **options)
    end

    # Page refresh (Turbo 8): request-id first when there is one, as turbo_stream_refresh_tag does.
    def broadcast_refresh_to(*streamables, request_id: nil)
      attributes = request_id ? { "request-id": request_id } : {}
      broadcast_action_to(*streamables, action: :refresh, attributes: attributes)
    end

    # Blank parts are dropped first, as turbo-rails does before naming the stream.
    def broadcast_stream_to(*streamables, content:)
      ActionCable.server.broadcast(stream_name_from(streamables.flatten.compact_blank), content)
    end

    private

    def tags
      ActionController::Base.helpers.tag
    end
  end
end
