# frozen_string_literal: true

# Scenarios of the cookie-authenticated reference apps (record.rb). Each logs in over HTTP,
# then opens the socket with the cookies Rails set, as a browser does.

module AppRecorder
  CHAT = "config/examples/chat.toml"
  SHOP = "config/examples/shop.toml"
  SHOP_DEVISE = "config/examples/shop-devise.toml"

  # ---- chat (Campfire-shaped, SQLite) ------------------------------------------------------

  scenario "chat_campfire_session", app: "chat", config: CHAT,
           description: "Ann and Bob log in (signed permanent session_token cookie, Session.find_by(token:)) " \
                        "and open sockets: HeartbeatChannel and ReadRoomsChannel confirm; RoomChannel confirms " \
                        "a member's room and rejects another; TypingNotificationsChannel start/stop reach both " \
                        "members stamped {action, user: {id, name}} (id a number); RoomChannel.broadcast_to(room) " \
                        "and the user_<id>_reads stream are delivered." do
    ann = login("/session?user_id=1")
    bob = login("/session?user_id=2")
    connect(:ann, path: "/cable", headers: browser_headers(ann))
    recv(:ann)
    subscribe(:ann, identifier("HeartbeatChannel"))
    recv(:ann)
    subscribe(:ann, identifier("ReadRoomsChannel"))
    recv(:ann)
    subscribe(:ann, identifier("RoomChannel", room_id: 1))
    recv(:ann)
    subscribe(:ann, identifier("RoomChannel", room_id: 2))
    recv(:ann)
    subscribe(:ann, identifier("TypingNotificationsChannel", room_id: 1))
    recv(:ann)
    connect(:bob, path: "/cable", headers: browser_headers(bob))
    recv(:bob)
    subscribe(:bob, identifier("TypingNotificationsChannel", room_id: 1))
    recv(:bob)
    message(:ann, identifier("TypingNotificationsChannel", room_id: 1), JSON.generate("action" => "start"))
    recv(:ann)
    recv(:bob)
    message(:ann, identifier("TypingNotificationsChannel", room_id: 1), JSON.generate("action" => "stop"))
    recv(:ann)
    recv(:bob)
    broadcast_ruby('RoomChannel.broadcast_to(Room.find(1), { "id" => 7, "body" => "<p>hi</p>" })')
    recv(:ann)
    broadcast_ruby('ActionCable.server.broadcast("user_1_reads", { "room_id" => 1 })')
    recv(:ann)
    silence(:ann, :bob)
  end

  scenario "chat_room_params_cast", app: "chat", config: CHAT,
           description: "RoomChannel looks the room up with current_user.rooms.find_by(id: params[:room_id]): " \
                        "Active Record casts the param for the integer column, so \"1 OR 1=1\", \"01\", \" 1\" " \
                        "and 1.9 find room 1 (confirm, stream room:<gid of Room 1>), while \"abc\", \"\", null, " \
                        "a missing param and a room Cy is not in (2) reject." do
    cy = login("/session?user_id=3")
    connect(:cy, path: "/cable", headers: browser_headers(cy))
    recv(:cy)
    # (An array, room_id: [1], is left out: Rails' find_by(id: [1]) is an IN query and finds
    # room 1; ferrocable rejects arrays. spec/KNOWN_DIFFERENCES.md.)
    replies = ["1 OR 1=1", "01", " 1", 1.9, "abc", "", nil, 2].map do |room|
      subscribe(:cy, identifier("RoomChannel", room_id: room))
      recv(:cy).first
    end
    subscribe(:cy, identifier("RoomChannel"))
    recv(:cy)
    confirmed = replies.count { |r| r.include?("confirm_subscription") }
    broadcast_ruby('RoomChannel.broadcast_to(Room.find(1), { "body" => "to every cast" })')
    recv(:cy, confirmed, any_order: true)
    message(:cy, identifier("RoomChannel", room_id: "01"), JSON.generate("action" => "start"))
    silence(:cy)
  end

  scenario "chat_typing_name_escaping", app: "chat", config: CHAT,
           description: "A user whose name needs JSON escaping (quotes, <, >, non-ASCII): the stamped typing " \
                        "notification renders it as ActiveSupport::JSON does." do
    cy = login("/session?user_id=3")
    connect(:cy, path: "/cable", headers: browser_headers(cy))
    recv(:cy)
    subscribe(:cy, identifier("TypingNotificationsChannel", room_id: 1))
    recv(:cy)
    message(:cy, identifier("TypingNotificationsChannel", room_id: 1), JSON.generate("action" => "start", "extra" => 1))
    recv(:cy)
  end

  scenario "chat_cookie_refusals", app: "chat", config: CHAT,
           description: "Every bad session_token gets Rails' answer: 101, then the unauthorized disconnect and " \
                        "close 1000. No cookie; a tampered signature; a cookie signed with another secret; a valid " \
                        "signed cookie of another name (theme) copied under session_token (purpose " \
                        "cookie.theme); an expired cookie; a Marshal payload signed with the right key; " \
                        "SQL-ish tokens correctly signed (no such session)." do
    ann = login("/session?user_id=1")
    token = ann.fetch("session_token")
    theme = login("/theme?value=#{token_value(token)}")
    short = login("/session/short?user_id=1")
    sleep 1.5
    other_secret = app_eval(<<~RUBY)
      key = ActiveSupport::KeyGenerator.new("another-secret", iterations: 1000, hash_digest_class: OpenSSL::Digest::SHA256).generate_key("signed cookie")
      value = Base64.strict_encode64(JSON.generate(Session.first.token))
      ActiveSupport::MessageVerifier.new(key, digest: "SHA1", serializer: JSON).generate({ "_rails" => { "message" => value, "exp" => nil, "pur" => "cookie.session_token" } })
    RUBY
    marshal = app_eval(<<~RUBY)
      key = Rails.application.key_generator.generate_key("signed cookie")
      value = Base64.strict_encode64(Marshal.dump(Session.first.token))
      ActiveSupport::MessageVerifier.new(key, digest: "SHA1", serializer: Marshal).generate({ "_rails" => { "message" => value, "exp" => nil, "pur" => "cookie.session_token" } })
    RUBY
    sqlish = ["x' OR '1'='1", "1; DROP TABLE sessions; --"].map do |v|
      login("/session/raw?value=#{URI.encode_www_form_component(v)}").fetch("session_token")
    end
    tampered = token.sub(/.\z/) { |c| c == "0" ? "1" : "0" }
    cases = [
      {},
      { "session_token" => tampered },
      { "session_token" => URI.encode_www_form_component(other_secret) },
      { "session_token" => theme.fetch("theme") },
      { "session_token" => short.fetch("session_token") },
      { "session_token" => URI.encode_www_form_component(marshal) },
      *sqlish.map { |c| { "session_token" => c } }
    ]
    cases.each_with_index do |cookies, i|
      connect(:"c#{i}", path: "/cable", headers: browser_headers(cookies))
      recv(:"c#{i}")
      recv_close(:"c#{i}")
    end
  end

  # ---- chat: Turbo Streams, Campfire's shape -------------------------------------------------
  #
  # rooms/show renders `turbo_stream_from @room, :messages, channel: RoomMessagesChannel`; the
  # stock Turbo::StreamsChannel refuses those names and serves the others (`turbo_stream_from
  # :rooms`). Signed names are made by the running app; broadcasts are its own PUBLISHes.

  module TurboNames
    # What `turbo_stream_from(*streamables)` puts in signed-stream-name, made by the app.
    def signed_name(streamables_ruby)
      app_eval("Turbo::StreamsChannel.signed_stream_name(#{streamables_ruby})")
    end

    # The identifier <turbo-cable-stream-source> subscribes with: channel, then the name.
    def turbo_identifier(signed, channel: "Turbo::StreamsChannel")
      identifier(channel, signed_stream_name: signed)
    end
  end

  # A message partial as Campfire appends it (target dom_id(room, :messages)).
  MESSAGE_HTML = '<div id="message_41" class="message" data-user-id="3"><strong>Cy &quot;the third&quot; ' \
                 '&lt;Ω&gt;</strong><div class="message__body"><p>Lunch &amp; a “quick” sync? 🍜</p></div></div>'

  scenario "chat_turbo_room_messages", app: "chat", config: CHAT,
           description: "Campfire's Turbo streams: Ann (a member of room 1 only) subscribes RoomMessagesChannel with the " \
                        "signed name of [room 1, :messages] (confirmed) and of [room 2, :messages] (rejected: not a " \
                        "member); Turbo::StreamsChannel rejects the room 1 :messages name and confirms `rooms`. Bob " \
                        "(member of room 2) streams room 2's messages. broadcast_append_to [room, :messages] reaches " \
                        "each room's members only, byte for byte; broadcast_replace_to :rooms reaches Ann." do
    extend TurboNames
    ann = login("/session?user_id=1")
    bob = login("/session?user_id=2")
    room1 = signed_name("[Room.find(1), :messages]")
    room2 = signed_name("[Room.find(2), :messages]")
    rooms = signed_name(":rooms")
    connect(:ann, path: "/cable", headers: browser_headers(ann))
    recv(:ann)
    connect(:bob, path: "/cable", headers: browser_headers(bob))
    recv(:bob)
    subscribe(:ann, turbo_identifier(room1, channel: "RoomMessagesChannel"))
    recv(:ann)
    subscribe(:ann, turbo_identifier(room2, channel: "RoomMessagesChannel"))
    recv(:ann)
    subscribe(:ann, turbo_identifier(room1))
    recv(:ann)
    subscribe(:ann, turbo_identifier(rooms))
    recv(:ann)
    subscribe(:bob, turbo_identifier(room2, channel: "RoomMessagesChannel"))
    recv(:bob)
    broadcast_ruby("room = Room.find(1); Turbo::StreamsChannel.broadcast_append_to(room, :messages, " \
                   "target: ActionView::RecordIdentifier.dom_id(room, :messages), html: #{MESSAGE_HTML.dump})")
    recv(:ann)
    broadcast_ruby("room = Room.find(2); Turbo::StreamsChannel.broadcast_append_to(room, :messages, " \
                   "target: ActionView::RecordIdentifier.dom_id(room, :messages), html: '<p>private</p>')")
    recv(:bob)
    broadcast_ruby('Turbo::StreamsChannel.broadcast_replace_to(:rooms, target: "rooms", ' \
                   'html: "<nav id=\"rooms\"><a href=\"/rooms/1\">Lobby</a></nav>")')
    recv(:ann)
    silence(:ann, :bob)
  end

  scenario "chat_turbo_refusals", app: "chat", config: CHAT,
           description: "What RoomMessagesChannel turns away, on Cy's socket (a member of room 1): a tampered name (and " \
                        "on the stock channel too); room 1's own name without :messages (confirmed on the stock " \
                        "channel); [room 1, :messages, :extra] (not a message stream: the stock channel confirms it); " \
                        "[user 3, :messages] (not a room); [room 99, :messages] (no such room); no signed name. A " \
                        "signed name that is a number makes the verifier raise: no reply. The good name still " \
                        "confirms afterwards." do
    extend TurboNames
    cy = login("/session?user_id=3")
    good = signed_name("[Room.find(1), :messages]")
    tampered = good.sub(/.\z/) { |c| c == "0" ? "1" : "0" }
    room = signed_name("Room.find(1)")
    extra = signed_name("[Room.find(1), :messages, :extra]")
    user = signed_name("[User.find(3), :messages]")
    missing = signed_name("[Room.new(id: 99), :messages]")
    connect(:cy, path: "/cable", headers: browser_headers(cy))
    recv(:cy)
    [tampered, room, extra, user, missing].each do |name|
      subscribe(:cy, turbo_identifier(name, channel: "RoomMessagesChannel"))
      recv(:cy)
    end
    [tampered, room, extra].each do |name|
      subscribe(:cy, turbo_identifier(name))
      recv(:cy)
    end
    subscribe(:cy, identifier("RoomMessagesChannel"))
    recv(:cy)
    subscribe_and_record(:cy, identifier("RoomMessagesChannel", signed_stream_name: 42))
    subscribe(:cy, turbo_identifier(good, channel: "RoomMessagesChannel"))
    recv(:cy)
  end

  # ---- shop (cookie-store session, PostgreSQL) ----------------------------------------------

  scenario "shop_session_user_id", app: "shop", config: SHOP,
           description: "Ann logs in (session[:user_id] in the encrypted _shop_session cookie, AES-256-GCM): " \
                        "ProjectChannel streams project_<id> for a member's project, also for id \"1 OR 1=1\" " \
                        "(cast to 1), and rejects project 2; NotificationsChannel does stream_for current_user " \
                        "(notifications:<gid of User 1>); broadcasts to both are delivered." do
    ann = login("/login?user_id=1")
    connect(:ann, path: "/cable", headers: browser_headers(ann))
    recv(:ann)
    subscribe(:ann, identifier("ProjectChannel", id: 1))
    recv(:ann)
    subscribe(:ann, identifier("ProjectChannel", id: "1 OR 1=1"))
    recv(:ann)
    subscribe(:ann, identifier("ProjectChannel", id: 2))
    recv(:ann)
    subscribe(:ann, identifier("NotificationsChannel"))
    recv(:ann)
    broadcast_ruby('ActionCable.server.broadcast("project_1", { "status" => "shipped", "total" => 12.5 })')
    recv(:ann, 2, any_order: true)
    broadcast_ruby('NotificationsChannel.broadcast_to(User.find(1), { "title" => "Order #7", "unread" => 3 })')
    recv(:ann)
    silence(:ann)
  end

  scenario "shop_session_refusals", app: "shop", config: SHOP,
           description: "No session cookie, a session without user_id (logged out), a session whose user does " \
                        "not exist (User.find_by(id: 999) is nil), and a tampered session cookie: each gets the " \
                        "unauthorized disconnect and close 1000." do
    out = login("/logout")
    ghost = login("/login?user_id=999")
    ann = login("/login?user_id=1")
    tampered = ann.fetch("_shop_session").sub(/.\z/) { |c| c == "A" ? "B" : "A" }
    [{}, out, ghost, { "_shop_session" => tampered }].each_with_index do |cookies, i|
      connect(:"c#{i}", path: "/cable", headers: browser_headers(cookies))
      recv(:"c#{i}")
      recv_close(:"c#{i}")
    end
  end

  scenario "shop_devise_session", app: "shop", config: SHOP_DEVISE,
           description: "Bob signs in the Devise way (session[\"warden.user.user.key\"] = [[id], salt]): the " \
                        "socket is his; ProjectChannel confirms projects 1 and 2; NotificationsChannel delivers " \
                        "to him." do
    bob = login("/login_devise?user_id=2")
    connect(:bob, path: "/cable", headers: browser_headers(bob))
    recv(:bob)
    subscribe(:bob, identifier("ProjectChannel", id: 2))
    recv(:bob)
    subscribe(:bob, identifier("NotificationsChannel"))
    recv(:bob)
    broadcast_ruby('NotificationsChannel.broadcast_to(User.find(2), { "title" => "Welcome" })')
    recv(:bob)
    broadcast_ruby('ActionCable.server.broadcast("project_2", { "status" => "packed" })')
    recv(:bob)
  end
end

# The value inside a signed cookie as Rails would give it to the app (for the theme cookie
# that copies it): the token itself.
def token_value(cookie)
  json = Base64.decode64(URI.decode_www_form_component(cookie).split("--").first)
  message = JSON.parse(json).dig("_rails", "message")
  URI.encode_www_form_component(JSON.parse(Base64.decode64(message)))
end
