# frozen_string_literal: true

# Prints COUNT `Cookie` header values for the shop reference app (spec/reference/apps/shop):
# the encrypted cookie-store session `_shop_session` holding {"user_id" => i} for users
# 1..COUNT, exactly as Rails (load_defaults 7.2) writes it: AES-256-GCM with the key
# PBKDF2-SHA256(secret_key_base, "authenticated encrypted cookie"), the cookie envelope with
# purpose "cookie._shop_session", percent-encoded as Rack sets it. Used by bin/bench (R4C).
#
#   ruby tools/cable-bench/mint-shop-cookies.rb SECRET_KEY_BASE COUNT > cookies.txt
require "active_support"
require "active_support/message_encryptor"
require "base64"
require "json"
require "openssl"
require "securerandom"
require "uri"

secret, count = ARGV
abort "usage: mint-shop-cookies.rb SECRET_KEY_BASE COUNT" unless secret && count

# Rails' key generator on load_defaults 7.0+, written out: ActiveSupport 6.1 (Debian 12's, which
# runs this) has no hash_digest_class and would derive the SHA1 key, which a 7.2 app refuses.
key = OpenSSL::PKCS5.pbkdf2_hmac(secret, "authenticated encrypted cookie", 1000, 32, OpenSSL::Digest.new("SHA256"))
encryptor = ActiveSupport::MessageEncryptor.new(key, cipher: "aes-256-gcm", serializer: JSON)
$stdout.sync = false
(1..Integer(count)).each do |user_id|
  session = { "session_id" => SecureRandom.hex(16), "user_id" => user_id }
  envelope = { "_rails" => { "message" => Base64.strict_encode64(JSON.generate(session)), "exp" => nil,
                             "pur" => "cookie._shop_session" } }
  puts "_shop_session=#{URI.encode_www_form_component(encryptor.encrypt_and_sign(envelope))}"
end
