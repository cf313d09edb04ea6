# frozen_string_literal: true

# Turbo Streams and CableReady scenarios (profiles turbo and turbo_sha1; fixtures/configs/turbo.toml).
# The reference app's Turbo code is spec/reference/channels/turbo/. Signed names are made by the
# running app (its key generator and MessageVerifier) through the control endpoint, so each
# version's transcripts carry that version's names; broadcasts are the app's own PUBLISHes.
# Same determinism rules as scenarios.rb.

require_relative "harness"

module Recorder
  TURBO = "Turbo::StreamsChannel"

  class Session
    # What `turbo_stream_from(*streamables)` renders into signed-stream-name.
    def signed_name(streamables_ruby)
      eval_in_app("Turbo::StreamsChannel.signed_stream_name(#{streamables_ruby})")
    end

    def eval_in_app(ruby)
      control("POST", "/eval", "ruby" => ruby).fetch("result").undump
    end

    # The identifier <turbo-cable-stream-source> subscribes with: channel, signed_stream_name,
    # then its data-* attributes (snake_cased), as JSON.stringify writes it.
    def turbo_id(signed, channel: TURBO, **data)
      ident({ "channel" => channel, "signed_stream_name" => signed }.merge(data.transform_keys(&:to_s)))
    end

    # Turbo::StreamsChannel.<call> in the app; records its PUBLISH.
    def turbo_broadcast(call)
      broadcast_ruby("Turbo::StreamsChannel.#{call}")
    end
  end

  ROOM_1 = "Room.find(1)"

  scenario "turbo_stream_actions", profile: :turbo,
           description: "turbo_stream_from [room, :board] subscribes Turbo::StreamsChannel with the app's signed name; " \
                        "broadcast_append/prepend/replace/update/remove/refresh_to PUBLISH the <turbo-stream> HTML as a " \
                        "JSON string (<>& as \\u003c \\u003e \\u0026, U+2028 escaped, non-ASCII raw) and every frame " \
                        "splices it unchanged." do
    user_token "admin_r1"
    open_client "a"
    board = turbo_id(signed_name("[#{ROOM_1}, :board]"))
    subscribe! "a", board
    html = "<div id=\"message_7\" class=\"message\">Hi & <b>bye</b>, café 😀 “quoted” \u2028 'single'</div>"
    turbo_broadcast %(broadcast_append_to(#{ROOM_1}, :board, target: "messages", html: #{html.dump}))
    recv "a"
    turbo_broadcast %(broadcast_prepend_to(#{ROOM_1}, :board, target: "messages", html: "<p>first</p>\\n<p>second</p>"))
    recv "a"
    turbo_broadcast %(broadcast_replace_to(#{ROOM_1}, :board, target: "message_7", html: #{html.dump}))
    recv "a"
    turbo_broadcast %(broadcast_update_to(#{ROOM_1}, :board, targets: ".unread > li[data-x='1']", html: "<span>3</span>"))
    recv "a"
    turbo_broadcast %(broadcast_remove_to(#{ROOM_1}, :board, target: "message_7"))
    recv "a"
    turbo_broadcast %(broadcast_refresh_to(#{ROOM_1}, :board))
    recv "a"
    turbo_broadcast %(broadcast_refresh_to(#{ROOM_1}, :board, request_id: "req-9f1c"))
    recv "a"
    silence "a"
  end

  scenario "turbo_identifier_data_attributes", profile: :turbo,
           description: "<turbo-cable-stream-source data-*> adds keys to the identifier: they do not affect verification and " \
                        "are echoed byte for byte (<>& escaped the ActiveSupport way); the same name with the keys in " \
                        "another order is a second subscription, and each gets the broadcast under its own identifier." do
    user_token "admin_r1"
    open_client "a"
    signed = signed_name("[#{ROOM_1}, :board]")
    plain = turbo_id(signed)
    with_data = turbo_id(signed, room_name: "Lobby <1> & \"co\" é", user_id: 42, empty: "")
    reordered = ident("signed_stream_name" => signed, "channel" => TURBO)
    subscribe! "a", with_data
    subscribe! "a", plain
    subscribe! "a", reordered
    turbo_broadcast %(broadcast_append_to(#{ROOM_1}, :board, target: "m", html: "<p>3 tabs</p>"))
    recv "a", 3, any_order: true
    silence "a"
  end

  scenario "turbo_invalid_signed_names", profile: :turbo,
           description: "Names that do not verify are rejected, as Turbo::StreamsChannel#subscribed does: a tampered " \
                        "digest, a truncated token, no separator, garbage, an empty string, a name signed with another " \
                        "secret_key_base, a CableReady name (other salt), a URL-safe base64 variant (Rails before 8.0.2 " \
                        "decodes strictly), a missing key or null; values that are not strings make the verifier raise " \
                        "(no reply at all). A signed empty name does verify, and is streamed." do
    user_token "admin_r1"
    open_client "a"
    good = signed_name("[#{ROOM_1}, :board]")
    other_secret = eval_in_app(
      "ActiveSupport::MessageVerifier.new(ActiveSupport::KeyGenerator.new('not-the-app-secret', iterations: 1000)" \
      ".generate_key('turbo/signed_stream_verifier_key'), digest: 'SHA256', serializer: JSON)" \
      ".generate(#{ROOM_1}.to_gid_param + ':board')"
    )
    cable_ready = eval_in_app("CableReady.signed_stream_verifier.generate(#{ROOM_1}.to_gid_param + ':board')")
    # Signed over URL-safe base64 text (what AnyCable's signer and url_safe: verifiers write),
    # with the app's own key: the name's strict base64 has '+', so the texts differ.
    url_safe = eval_in_app(
      "data = Base64.urlsafe_encode64(JSON.dump('?>>?>>~~~')); " \
      "key = Rails.application.key_generator.generate_key('turbo/signed_stream_verifier_key'); " \
      "data + '--' + OpenSSL::HMAC.hexdigest('SHA256', key, data)"
    )
    raise ScenarioError, "not URL-safe: #{url_safe}" unless url_safe.include?("-") || url_safe.include?("_")

    tampered = good[0..-2] + (good[-1] == "0" ? "1" : "0")
    [tampered, good[0..-3], good.sub("--", ""), "garbage", "", other_secret, cable_ready, url_safe].each do |name|
      subscribe_and_record "a", turbo_id(name)
    end
    subscribe_and_record "a", ident("channel" => TURBO)
    [nil, 42, [good], { "name" => good }].each do |value|
      subscribe_and_record "a", ident("channel" => TURBO, "signed_stream_name" => value)
    end
    # Still usable afterwards.
    subscribe! "a", turbo_id(good)
    # A signed empty name verifies, and `if stream_name = ...` is true for "": Turbo streams it.
    subscribe! "a", turbo_id(signed_name("''"))
  end

  scenario "turbo_guarded_messages_stream", profile: :turbo,
           description: "Campfire's shape: the stock Turbo::StreamsChannel refuses verified names ending in :messages; " \
                        "RoomMessagesChannel (turbo_stream_from ..., channel: RoomMessagesChannel) verifies the same name, " \
                        "then its own check (the role claim): admin confirmed, customer rejected. broadcast_append_to " \
                        "[room, :messages] reaches only the checked subscriber." do
    user_token "admin_r1"
    user_token "customer_r1", user_id: 77, role: "customer"
    open_client "a"
    open_client "b", "customer_r1"
    messages = signed_name("[#{ROOM_1}, :messages]")
    subscribe! "a", turbo_id(messages)
    subscribe! "a", turbo_id(messages, channel: "RoomMessagesChannel")
    subscribe! "b", turbo_id(messages, channel: "RoomMessagesChannel")
    subscribe! "b", turbo_id(signed_name("[#{ROOM_1}, :board]"))
    turbo_broadcast %(broadcast_append_to(#{ROOM_1}, :messages, target: "messages", html: "<p>members only</p>"))
    recv "a"
    silence "a", "b"
  end

  scenario "turbo_fan_out_and_unsubscribe", profile: :turbo,
           description: "Two pages on one stream both get a broadcast; after one unsubscribes only the other gets the next, " \
                        "and a stream name of plain parts (turbo_stream_from :lobby, 2) needs no record." do
    user_token "admin_r1"
    user_token "staff_r1", user_id: 50, role: "staff"
    open_client "a"
    open_client "b", "staff_r1"
    lobby = turbo_id(signed_name("[:lobby, 2]"))
    subscribe! "a", lobby
    subscribe! "b", lobby
    turbo_broadcast %(broadcast_replace_to(:lobby, 2, target: "count", html: "<span>2 online</span>"))
    recv "a"
    recv "b"
    unsubscribe "b", lobby
    silence "b"
    turbo_broadcast %(broadcast_replace_to(:lobby, 2, target: "count", html: "<span>1 online</span>"))
    recv "a"
    silence "b"
  end

  # A realistic message partial: the kind of payload Turbo apps send most (also the shape of
  # bin/bench's --payload turbo).
  LARGE_TURBO_HTML = <<~HTML
    <div id="message_123456" class="message message--formatted" data-controller="reply" data-message-id="123456" data-user-id="42">
      <figure class="avatar message__avatar"><img alt="Léa Müller" src="/users/42/avatar?v=3" width="48" height="48"></figure>
      <div class="message__body">
        <div class="message__meta">
          <strong class="message__author">Léa Müller</strong>
          <a class="message__permalink" href="/rooms/1/@123456"><time datetime="2026-12-07T09:41:00Z">9:41 AM</time></a>
        </div>
        <div class="message__presentation trix-content">
          <p>Déploiement terminé ✅ — the new <code>cable</code> nodes are live &amp; healthy. Latency p99 &lt; 5 ms.</p>
          <ul><li>nginx → ferrocable: <em>ok</em></li><li>Redis “prefix” check: <em>ok</em></li><li>Turbo streams: <em>ok</em> 🚀</li></ul>
          <blockquote>Q: does <b>broadcast_append_to</b> still work with 10 000 tabs? A: yes &amp; faster.</blockquote>
        </div>
        <div class="message__actions">
          <button type="button" class="btn btn--plain" data-action="reply#start" title="Reply">↩︎</button>
          <button type="button" class="btn btn--plain" data-action="boost#open" title="Boost">❤️</button>
        </div>
      </div>
    </div>
  HTML

  scenario "turbo_large_broadcast", profile: :turbo,
           description: "A 2 KB message partial (markup, entities, non-ASCII, emoji) appended with broadcast_append_to: the " \
                        "published JSON string is spliced into the frame as it is." do
    user_token "admin_r1"
    open_client "a"
    subscribe! "a", turbo_id(signed_name("[#{ROOM_1}, :board]"))
    turbo_broadcast %(broadcast_append_to(#{ROOM_1}, :board, target: "messages", html: #{LARGE_TURBO_HTML.dump}))
    recv "a"
  end

  scenario "cable_ready_stream", profile: :turbo,
           description: "CableReady::Stream (salt cable_ready/verifier_key, signed name under identifier): a valid name " \
                        "streams and gets ActionCable.server.broadcast operations; a Turbo name, a forged one and a " \
                        "signed empty name (present? is false) are rejected." do
    user_token "admin_r1"
    open_client "a"
    name = eval_in_app("CableReady.signed_stream_verifier.generate(#{ROOM_1}.to_gid.to_s + ':messages')")
    subscribe! "a", ident("channel" => "CableReady::Stream", "identifier" => name)
    broadcast_ruby <<~RUBY.strip
      ActionCable.server.broadcast(#{ROOM_1}.to_gid.to_s + ":messages", { "cableReady" => true, "operations" => [{ "operation" => "innerHtml", "selector" => "#room_1", "html" => "<b>1 new</b> & more" }] })
    RUBY
    recv "a"
    turbo_name = signed_name("[#{ROOM_1}, :board]")
    empty = eval_in_app("CableReady.signed_stream_verifier.generate('')")
    [turbo_name, name.sub(/.\z/) { |c| c == "0" ? "1" : "0" }, empty].each do |signed|
      subscribe_and_record "a", ident("channel" => "CableReady::Stream", "identifier" => signed)
    end
  end

  scenario "turbo_sha1_key", profile: :turbo_sha1, versions: %w[7.2],
           description: "An app on load_defaults 7.2 whose key generator stayed on PBKDF2-SHA1 (something touched it before " \
                        "after_initialize, rails/rails#51750): its signed names verify with the SHA1-derived key, which " \
                        "ferrocable tries second." do
    user_token "admin_r1"
    open_client "a"
    board = turbo_id(signed_name("[#{ROOM_1}, :board]"))
    subscribe! "a", board
    turbo_broadcast %(broadcast_replace_to(#{ROOM_1}, :board, target: "message_7", html: "<p>sha1 app</p>"))
    recv "a"
  end
end
