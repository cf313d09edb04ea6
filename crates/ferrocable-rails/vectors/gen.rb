#!/usr/bin/env ruby
# frozen_string_literal: true
#
# Writes the test vectors of crates/ferrocable-rails from a real Rails: one JSON file per
# `config.load_defaults` value, produced by booting a minimal in-memory app (MyApp) on whatever
# Rails this Ruby loads, and driving it through its own middleware stack with
# Rack::MockRequest: cookies are set by controller code and come back from the Set-Cookie
# headers exactly as a browser would return them; every "what Rails reads" value is what the
# app reads from a Cookie header in a second request.
#
# Usage: ruby gen.rb --load-defaults 7.2 --out-dir fixtures/rails
#   writes fixtures/rails/<Rails.version>/load_defaults-7.2.json (normally run through
#   bin/gen-rails-vectors, which picks the Rails installations and load_defaults values).
#
# Deterministic: the clock is frozen at NOW (ActiveSupport's travel_to), and the IV of every
# encryption and every session id come from a seeded generator, so rerunning with the same
# Rails/Ruby/Rack gives the same bytes. Only inputs are fixed this way; every format is Rails'.
#
# Each vector carries `rails` (what Rails did: {"value": v} | {"nil": true} | {"raises": cls})
# and `expect` (what ferrocable-rails must do: {"ok": v, "key": "derived:SHA256"} or
# {"error": "<Error::kind>"}). Where the two disagree the vector names the reason in
# `deliberate` (we refuse what Rails accepts: Marshal) or `leniency` (we accept what this app
# would not: the other key digest, URL-safe base64); the Rust test checks that no other
# disagreement exists.

require "json"
require "optparse"
require "tmpdir"
require "openssl"
require "base64"

options = {}
OptionParser.new do |o|
  o.on("--load-defaults VERSION") { |v| options[:load_defaults] = v }
  o.on("--out-dir DIR") { |v| options[:out_dir] = v }
end.parse!
LOAD_DEFAULTS = options.fetch(:load_defaults) { abort "--load-defaults VERSION required" }
OUT_DIR = options.fetch(:out_dir) { abort "--out-dir DIR required" }

ENV["RAILS_ENV"] = "test"
ENV["DATABASE_URL"] = "sqlite3::memory:"

require "rails"
require "action_controller/railtie"
require "active_record/railtie"
require "active_job/railtie" # loads globalid's railtie, as in a generated app
require "action_cable/engine"
require "active_support/testing/time_helpers"

SECRET = "0123456789abcdef" * 8 # the worked example of docs/rails-apps.md §1.6
OTHER_SECRET = "fedcba9876543210" * 8
NOW = Time.utc(2026, 1, 15, 12, 0, 0)
RAILS_VERSION = Gem::Version.new(Rails.version)
RAILS_71 = RAILS_VERSION >= Gem::Version.new("7.1")
RAILS_72 = RAILS_VERSION >= Gem::Version.new("7.2")
LD = Gem::Version.new(LOAD_DEFAULTS)

# --- determinism: seeded IVs and session ids (inputs only) ---------------------------------

SEEDED = Random.new(20_260_115)
OpenSSL::Cipher.prepend(Module.new do
  def random_iv
    self.iv = SEEDED.bytes(iv_len)
  end
end)
SecureRandom.singleton_class.prepend(Module.new do
  def hex(n = nil)
    SEEDED.bytes(n || 16).unpack1("H*")
  end
end)

# --- the app --------------------------------------------------------------------------------

ROOT = Dir.mktmpdir("ferrocable-rails-vectors")
at_exit { FileUtils.rm_rf(ROOT) }

module MyApp
  class Application < Rails::Application
    config.load_defaults LOAD_DEFAULTS
    config.root = ROOT
    config.eager_load = false
    config.secret_key_base = SECRET
    config.logger = Logger.new(nil)
    config.active_support.deprecation = :silence
    config.hosts.clear if config.respond_to?(:hosts)
    # A generated app has had config/initializers/cookies_serializer.rb (`:json`) since
    # Rails 4.1; `load_defaults 7.0` sets the same. Marshal cookies are made per request below.
    config.action_dispatch.cookies_serializer = :json
    routes.append { get "/run" => "vectors#run" }
  end
end

class VectorsController < ActionController::Base
  # The block of the current request runs in the controller (cookies, session, request).
  def run
    result = instance_exec(&$op)
    render plain: ActiveSupport::JSON.encode(result), content_type: "application/json"
  end
end

Rails.application.initialize!

ActiveRecord::Schema.verbose = false
ActiveRecord::Schema.define do
  create_table(:users) { |t| t.string :type }
  create_table(:rooms)
  create_table(:sessions) { |t| t.integer :user_id }
  create_table(:admin_accounts)
  create_table(:tokens, id: :string)
end

class User < ActiveRecord::Base; end
class Guest < User; end # STI: signed ids use the base class name
class Room < ActiveRecord::Base; end
class Session < ActiveRecord::Base; end
class Token < ActiveRecord::Base; end
module Admin
  class Account < ActiveRecord::Base
    self.table_name = "admin_accounts"
  end
end

include ActiveSupport::Testing::TimeHelpers
travel_to NOW

USER = User.create!(id: 1)
GUEST = Guest.create!(id: 2)
ROOM = Room.create!(id: 1)
SESSION = Session.create!(id: 7, user_id: 1)
TOKEN = Token.create!(id: "tok_a b/c")
ACCOUNT = Admin::Account.create!(id: 3)

# --- helpers --------------------------------------------------------------------------------

def iso(time) = time.utc.iso8601(3)

# Runs the block with the clock frozen at `time`, then back at NOW (6.1 forbids nesting
# travel_to blocks).
def at_time(time)
  travel_back
  travel_to(time)
  yield
ensure
  travel_back
  travel_to(NOW)
end

# The digest Rails.application.key_generator actually uses, found by comparing outputs.
def key_generator_for(secret, digest)
  if RAILS_VERSION >= Gem::Version.new("7.0")
    ActiveSupport::CachingKeyGenerator.new(
      ActiveSupport::KeyGenerator.new(secret, iterations: 1000, hash_digest_class: OpenSSL::Digest.const_get(digest))
    )
  elsif digest == "SHA1"
    ActiveSupport::CachingKeyGenerator.new(ActiveSupport::KeyGenerator.new(secret, iterations: 1000))
  else
    # Rails 6.1 has no SHA256 key generator; this stands in for one (same PBKDF2 call 7.0 makes).
    Class.new do
      define_method(:generate_key) do |salt, key_size = 64|
        OpenSSL::PKCS5.pbkdf2_hmac(secret, salt, 1000, key_size, OpenSSL::Digest::SHA256.new)
      end
    end.new
  end
end

APP_DIGEST = %w[SHA1 SHA256].find do |d|
  key_generator_for(SECRET, d).generate_key("probe") == Rails.application.key_generator.generate_key("probe")
end or abort "app key generator matches neither digest"
OTHER_DIGEST = APP_DIGEST == "SHA1" ? "SHA256" : "SHA1"

# Request header overrides, applied before the controller first touches the cookie jars.
HEADER_OVERRIDES = {
  "cookies_serializer" => "action_dispatch.cookies_serializer",
  "signed_cookie_digest" => "action_dispatch.signed_cookie_digest",
  "use_cookies_with_metadata" => "action_dispatch.use_cookies_with_metadata",
  "use_authenticated_cookie_encryption" => "action_dispatch.use_authenticated_cookie_encryption",
}.freeze

def apply_overrides(request, overrides)
  overrides.each do |key, value|
    case key
    when "key_generator"
      secret, digest = value
      request.set_header("action_dispatch.key_generator", key_generator_for(secret, digest))
    when "cookies_serializer"
      request.set_header(HEADER_OVERRIDES.fetch(key), value.to_sym)
    else
      request.set_header(HEADER_OVERRIDES.fetch(key), value)
    end
  end
end

def perform(cookie_header: nil, &block)
  $op = block
  env = { "HTTP_HOST" => "example.org" }
  env["HTTP_COOKIE"] = cookie_header if cookie_header
  response = Rack::MockRequest.new(Rails.application).get("/run", env)
  raise "HTTP #{response.status}: #{response.body[0, 800]}" unless response.status == 200

  raw = response.headers["set-cookie"] || response.headers["Set-Cookie"]
  set_cookies = Array(raw).flat_map { |line| line.split("\n") }.to_h do |line|
    line.split(";", 2).first.split("=", 2)
  end
  [JSON.parse(response.body), set_cookies]
end

# Sets a cookie through the app and returns the `name=value` a browser would send back.
# `value` is always wrapped as `{value: ...}`: a bare Hash would be taken for the options
# (and the jar writes into the options Hash it is given, hence the deep copy).
def set_cookie(jar, name, value, overrides = {}, expires: nil)
  _, set_cookies = perform do
    apply_overrides(request, overrides)
    target = cookies.public_send(jar)
    options = { value: value.deep_dup }
    options[:expires] = expires if expires
    target[name.to_sym] = options
    nil
  end
  "#{name}=#{set_cookies.fetch(name)}"
end

# What the app reads from cookie `name` given this Cookie header.
def rails_read(jar, name, header, overrides = {})
  result, = perform(cookie_header: header) do
    apply_overrides(request, overrides)
    begin
      value = cookies.public_send(jar)[name.to_sym]
      value.nil? ? { "nil" => true } : { "value" => value }
    rescue StandardError => e
      { "raises" => e.class.name }
    end
  end
  result
end

def ok(value, key = "derived:#{APP_DIGEST}") = { "ok" => value, "key" => key }
def error(kind) = { "error" => kind }

COOKIES = []

# `with_purpose`: whether the cookie was written with a purpose (use_cookies_with_metadata);
# one without is accepted by Rails under any name, refused under `require_purpose`.
def cookie_vector(id, jar:, name:, header:, expect:, read: {}, now: nil, with_purpose: $metadata, **extra)
  if expect.key?("ok") && !with_purpose
    extra[:require_purpose_expect] ||= error("wrong_purpose")
  end
  rails = if now
    at_time(now) { rails_read(jar, name, header, read) }
  else
    rails_read(jar, name, header, read)
  end
  COOKIES << {
    "id" => id, "jar" => jar.to_s, "name" => name, "cookie_header" => header,
    "read_config" => read.except("key_generator"), "now" => now && iso(now), "now_unix" => now&.to_i,
    "rails" => rails, "expect" => expect,
  }.merge(extra.transform_keys(&:to_s)).compact
end

def tamper_digest(header)
  # Flip the last hex digit of the HMAC: still well-formed, wrong signature.
  name, value = header.split("=", 2)
  last = value[-1]
  "#{name}=#{value[0..-2]}#{last == '0' ? '1' : '0'}"
end

def tamper_ciphertext(header)
  # Change the first base64 character of the ciphertext: still well-formed, fails the GCM tag.
  name, value = header.split("=", 2)
  "#{name}=#{value[0] == 'A' ? 'B' : 'A'}#{value[1..]}"
end

def rename(header, new_name) = "#{new_name}=#{header.split('=', 2).last}"

# --- key generator --------------------------------------------------------------------------

SALTS = [
  ["signed cookie", 64], ["authenticated encrypted cookie", 32], ["encrypted cookie", 32],
  ["signed encrypted cookie", 64], ["active_record/signed_id", 64],
  ["turbo/signed_stream_verifier_key", 64], ["cable_ready/verifier_key", 64],
].freeze

KEYS = SALTS.flat_map do |salt, size|
  digests = RAILS_VERSION >= Gem::Version.new("7.0") ? %w[SHA1 SHA256] : %w[SHA1]
  digests.map do |digest|
    { "salt" => salt, "key_size" => size, "digest" => digest,
      "hex" => key_generator_for(SECRET, digest).generate_key(salt, size).unpack1("H*") }
  end
end

# --- signed cookies -------------------------------------------------------------------------

metadata = $metadata = Rails.application.config.action_dispatch.use_cookies_with_metadata
authenticated = Rails.application.config.action_dispatch.use_authenticated_cookie_encryption

values = {
  "string" => "hello world +/=%;",
  "int" => 42,
  "hash" => { "user_id" => 7, "roles" => %w[a b], "nested" => { "x" => nil, "f" => 1.5 } },
  "array" => [1, "two", nil, true],
  "html" => "<b>ü & 😀</b> \u2028",
}
signed_headers = {}
values.each do |label, value|
  header = signed_headers[label] = set_cookie(:signed, "v_#{label}", value)
  cookie_vector("signed-#{label}", jar: :signed, name: "v_#{label}", header: header, expect: ok(value))
end

session_token = set_cookie(:signed, "session_token", "tok123")
cookie_vector("signed-copied-to-another-name", jar: :signed, name: "other_token",
  header: rename(session_token, "other_token"),
  expect: metadata ? error("wrong_purpose") : ok("tok123"),
  note: "purpose is cookie.<name> when use_cookies_with_metadata is on")

_, set = perform { cookies.signed.permanent[:remember] = "forever"; nil }
permanent = "remember=#{set.fetch('remember')}"
cookie_vector("signed-permanent", jar: :signed, name: "remember", header: permanent, expect: ok("forever"),
  note: "cookies.signed.permanent: exp 20 years ahead")

expiring = set_cookie(:signed, "short", "brief", expires: 1.hour)
cookie_vector("signed-expires-in-valid", jar: :signed, name: "short", header: expiring, expect: ok("brief"))
cookie_vector("signed-expires-in-later", jar: :signed, name: "short", header: expiring,
  now: NOW + 2.hours, expect: error("expired"), note: "same cookie, clock 2 hours on")
cookie_vector("signed-expires-at-exactly", jar: :signed, name: "short", header: expiring,
  now: NOW + 1.hour, expect: error("expired"), note: "Rails: expired when now >= exp")
expired = at_time(NOW - 2.hours) { set_cookie(:signed, "old", "stale", expires: 1.hour) }
cookie_vector("signed-expired", jar: :signed, name: "old", header: expired, expect: error("expired"))
until_2030 = set_cookie(:signed, "dated", "dated", expires: Time.utc(2030, 1, 1))
cookie_vector("signed-expires-at", jar: :signed, name: "dated", header: until_2030, expect: ok("dated"))

cookie_vector("signed-tampered", jar: :signed, name: "session_token", header: tamper_digest(session_token),
  expect: error("bad_signature"))
other_secret = set_cookie(:signed, "session_token", "tok123", { "key_generator" => [OTHER_SECRET, APP_DIGEST] })
cookie_vector("signed-other-secret", jar: :signed, name: "session_token", header: other_secret,
  expect: error("bad_signature"))
other_digest = set_cookie(:signed, "session_token", "tok123", { "key_generator" => [SECRET, OTHER_DIGEST] })
cookie_vector("signed-other-key-digest", jar: :signed, name: "session_token", header: other_digest,
  expect: ok("tok123", "derived:#{OTHER_DIGEST}"), pinned_expect: error("bad_signature"),
  leniency: "other_key_digest")

sha256_hmac = set_cookie(:signed, "strong", "v", { "signed_cookie_digest" => "SHA256" })
cookie_vector("signed-sha256-hmac", jar: :signed, name: "strong", header: sha256_hmac,
  read: { "signed_cookie_digest" => "SHA256" }, expect: ok("v"))
cookie_vector("signed-sha256-hmac-read-as-sha1", jar: :signed, name: "strong", header: sha256_hmac,
  expect: error("invalid_format"), note: "the separator is looked for 40 hex digits from the end")

bare = set_cookie(:signed, "legacy", "no metadata", { "use_cookies_with_metadata" => false })
cookie_vector("signed-without-metadata", jar: :signed, name: "legacy", header: bare, expect: ok("no metadata"),
  with_purpose: false)
cookie_vector("signed-without-metadata-copied", jar: :signed, name: "elsewhere", header: rename(bare, "elsewhere"),
  expect: ok("no metadata"), with_purpose: false,
  note: "Rails falls back to no purpose, so a cookie without metadata is valid under any name")

marshal = set_cookie(:signed, "m", { "user_id" => 5 }, { "cookies_serializer" => "marshal" })
cookie_vector("signed-marshal-read-as-json", jar: :signed, name: "m", header: marshal,
  expect: error("marshal_payload"), marshal_rails_accepts: false)
%w[hybrid marshal].each do |serializer|
  cookie_vector("signed-marshal-read-as-#{serializer}", jar: :signed, name: "m", header: marshal,
    read: { "cookies_serializer" => serializer }, expect: error("marshal_payload"),
    marshal_rails_accepts: true, deliberate: "marshal")
end
hybrid = set_cookie(:signed, "h", { "a" => [1] }, { "cookies_serializer" => "hybrid" })
cookie_vector("signed-hybrid-writes-json", jar: :signed, name: "h", header: hybrid,
  read: { "cookies_serializer" => "hybrid" }, expect: ok({ "a" => [1] }))
cookie_vector("signed-json-read-as-marshal", jar: :signed, name: "v_hash", header: signed_headers.fetch("hash"),
  read: { "cookies_serializer" => "marshal" }, expect: ok(values["hash"]),
  note: "the Marshal serializer falls back to JSON for JSON payloads")

cookie_vector("signed-garbage", jar: :signed, name: "g", header: "g=garbage", expect: error("invalid_format"))
cookie_vector("signed-empty", jar: :signed, name: "g", header: "g=", expect: error("invalid_format"))
cookie_vector("signed-missing", jar: :signed, name: "g", header: "other=1", expect: error("missing"))
cookie_vector("signed-no-value", jar: :signed, name: "g", header: "g; other=1", expect: error("missing"))

# --- encrypted cookies ----------------------------------------------------------------------

values.each do |label, value|
  header = set_cookie(:encrypted, "e_#{label}", value)
  cookie_vector("encrypted-#{label}", jar: :encrypted, name: "e_#{label}", header: header,
    expect: ok(value, authenticated ? "derived:#{APP_DIGEST}" : "legacy_cbc:#{APP_DIGEST}"))
end
encrypted = set_cookie(:encrypted, "secret", "s3")
primary_key = authenticated ? "derived:#{APP_DIGEST}" : "legacy_cbc:#{APP_DIGEST}"
cookie_vector("encrypted-copied-to-another-name", jar: :encrypted, name: "other", header: rename(encrypted, "other"),
  expect: metadata ? error("wrong_purpose") : ok("s3", primary_key))
expired = at_time(NOW - 2.hours) { set_cookie(:encrypted, "old", "stale", expires: 1.hour) }
cookie_vector("encrypted-expired", jar: :encrypted, name: "old", header: expired, expect: error("expired"))
cookie_vector("encrypted-tampered", jar: :encrypted, name: "secret", header: tamper_ciphertext(encrypted),
  expect: error("bad_signature"))
other_secret = set_cookie(:encrypted, "secret", "s3", { "key_generator" => [OTHER_SECRET, APP_DIGEST] })
cookie_vector("encrypted-other-secret", jar: :encrypted, name: "secret", header: other_secret,
  expect: error("bad_signature"))
other_digest = set_cookie(:encrypted, "secret", "s3", { "key_generator" => [SECRET, OTHER_DIGEST] })
cookie_vector("encrypted-other-key-digest", jar: :encrypted, name: "secret", header: other_digest,
  expect: ok("s3", authenticated ? "derived:#{OTHER_DIGEST}" : "legacy_cbc:#{OTHER_DIGEST}"),
  pinned_expect: error("bad_signature"), leniency: "other_key_digest")
gcm = set_cookie(:encrypted, "gcm", "aead", { "use_authenticated_cookie_encryption" => true })
cookie_vector("encrypted-gcm", jar: :encrypted, name: "gcm", header: gcm, expect: ok("aead", "derived:#{APP_DIGEST}"))
cbc = set_cookie(:encrypted, "cbc", "legacy", { "use_authenticated_cookie_encryption" => false })
cookie_vector("encrypted-legacy-cbc", jar: :encrypted, name: "cbc", header: cbc, expect: ok("legacy", "legacy_cbc:#{APP_DIGEST}"),
  note: "AES-256-CBC + HMAC-SHA1 (pre-5.2 cookies), read by every version as a rotation")
cookie_vector("encrypted-legacy-cbc-tampered", jar: :encrypted, name: "cbc", header: tamper_digest(cbc),
  expect: error("bad_signature"))
marshal = set_cookie(:encrypted, "m", { "user_id" => 5 }, { "cookies_serializer" => "marshal" })
cookie_vector("encrypted-marshal-read-as-json", jar: :encrypted, name: "m", header: marshal,
  expect: error("marshal_payload"), marshal_rails_accepts: false)
cookie_vector("encrypted-marshal-read-as-hybrid", jar: :encrypted, name: "m", header: marshal,
  read: { "cookies_serializer" => "hybrid" }, expect: error("marshal_payload"),
  marshal_rails_accepts: true, deliberate: "marshal")
cookie_vector("encrypted-garbage", jar: :encrypted, name: "g", header: "g=a--b--c", expect: error("invalid_format"))

# --- cookie-store session -------------------------------------------------------------------

SESSION_KEY = Rails.application.config.session_options.fetch(:key)
SESSIONS = []

def rails_session(header)
  result, = perform(cookie_header: header) { session.to_hash }
  result
end

def session_vector(id, header:, expect:, **extra)
  SESSIONS << { "id" => id, "session_key" => SESSION_KEY, "cookie_header" => header,
                "rails" => rails_session(header), "expect" => expect }.merge(extra.transform_keys(&:to_s))
end

def login(&block)
  _, set = perform { instance_exec(&block); nil }
  "#{SESSION_KEY}=#{set.fetch(SESSION_KEY)}"
end

user_session = login { session[:user_id] = 42 }
session_vector("session-user-id", header: user_session, expect: ok(rails_session(user_session), primary_key),
  user_id: 42)
salt = "$2a$12$KIXQJmQj1ZKL3NrRZjsGH." # a bcrypt salt's shape
warden = login { session["warden.user.user.key"] = [[42], salt] }
session_vector("session-warden", header: warden, expect: ok(rails_session(warden), primary_key),
  warden_scope: "user", warden_user_id: 42)
other_secret = login do
  request.set_header("action_dispatch.key_generator", key_generator_for(OTHER_SECRET, APP_DIGEST))
  session[:user_id] = 42
end
session_vector("session-other-secret", header: other_secret, expect: error("bad_signature"),
  note: "Rails starts a fresh session")
session_vector("session-tampered", header: tamper_ciphertext(user_session), expect: error("bad_signature"))
session_vector("session-under-another-name", header: rename(user_session, "#{SESSION_KEY}x"),
  expect: error("missing"), note: "the session cookie's name is fixed; this checks a renamed copy is not read")

# --- Active Record signed ids ---------------------------------------------------------------

SIGNED_IDS = []

def signed_id_vector(id, token:, model:, purpose: nil, expect:, now: nil, **extra)
  klass = model.constantize
  found = begin
    record = now ? at_time(now) { klass.find_signed(token, purpose: purpose) } : klass.find_signed(token, purpose: purpose)
    record ? { "value" => record.id } : { "nil" => true }
  rescue StandardError => e
    { "raises" => e.class.name }
  end
  SIGNED_IDS << { "id" => id, "token" => token, "model" => model, "base_class" => klass.base_class.name,
                  "purpose" => purpose, "now" => now && iso(now), "now_unix" => now&.to_i, "rails" => found,
                  "expect" => expect }.merge(extra.transform_keys(&:to_s)).compact
end

def foreign_signed_id(record, secret:, digest:, **generate_options)
  key = key_generator_for(secret, digest).generate_key("active_record/signed_id")
  options = { digest: "SHA256", serializer: JSON }
  options[:url_safe] = true if RAILS_72
  ActiveSupport::MessageVerifier.new(key, **options)
    .generate(record.id, purpose: record.class.combine_signed_id_purposes(nil), **generate_options)
end

signed_id_vector("signed-id", token: USER.signed_id, model: "User", expect: ok(1))
with_purpose = USER.signed_id(purpose: :password_reset)
signed_id_vector("signed-id-purpose", token: with_purpose, model: "User", purpose: "password_reset", expect: ok(1))
signed_id_vector("signed-id-purpose-missing", token: with_purpose, model: "User", expect: error("wrong_purpose"))
signed_id_vector("signed-id-other-model", token: USER.signed_id, model: "Room", expect: error("wrong_purpose"))
expiring = USER.signed_id(expires_in: 1.hour)
signed_id_vector("signed-id-expires-in", token: expiring, model: "User", expect: ok(1))
signed_id_vector("signed-id-expires-in-later", token: expiring, model: "User", now: NOW + 2.hours,
  expect: error("expired"))
expired = at_time(NOW - 2.hours) { USER.signed_id(expires_in: 1.hour) }
signed_id_vector("signed-id-expired", token: expired, model: "User", expect: error("expired"))
if RAILS_71
  signed_id_vector("signed-id-expires-at", token: USER.signed_id(expires_at: Time.utc(2030, 1, 1)),
    model: "User", expect: ok(1))
end
signed_id_vector("signed-id-namespaced", token: ACCOUNT.signed_id, model: "Admin::Account", expect: ok(3))
signed_id_vector("signed-id-sti", token: GUEST.signed_id, model: "Guest", expect: ok(2),
  note: "purpose uses the base class (user)")
signed_id_vector("signed-id-sti-via-base", token: GUEST.signed_id, model: "User", expect: ok(2))
signed_id_vector("signed-id-string-key", token: TOKEN.signed_id, model: "Token", expect: ok("tok_a b/c"))
signed_id_vector("signed-id-other-secret", token: foreign_signed_id(USER, secret: OTHER_SECRET, digest: APP_DIGEST),
  model: "User", expect: error("bad_signature"))
signed_id_vector("signed-id-other-key-digest", token: foreign_signed_id(USER, secret: SECRET, digest: OTHER_DIGEST),
  model: "User", expect: ok(1, "derived:#{OTHER_DIGEST}"), pinned_expect: error("bad_signature"),
  leniency: "other_key_digest")
token = USER.signed_id
data, digest = token.split("--")
alphabet_flipped = RAILS_72 ? Base64.strict_encode64(Base64.urlsafe_decode64(data)) : nil
if alphabet_flipped && alphabet_flipped != data
  key = Rails.application.key_generator.generate_key("active_record/signed_id")
  strict_token = "#{alphabet_flipped}--#{OpenSSL::HMAC.hexdigest('SHA256', key, alphabet_flipped)}"
  signed_id_vector("signed-id-strict-base64-on-7.2", token: strict_token, model: "User", expect: ok(1),
    note: "7.2's url-safe decoder also takes the standard alphabet")
end

# Fizzy's connection: Session.find_signed(cookies.signed[:session_token]).
_, set = perform { cookies.signed.permanent[:session_token] = SESSION.signed_id; nil }
fizzy_cookie = "session_token=#{set.fetch('session_token')}"
fizzy_token = rails_read(:signed, "session_token", fizzy_cookie).fetch("value")
signed_id_vector("signed-id-in-signed-cookie", token: fizzy_token, model: "Session", expect: ok(7),
  cookie_header: fizzy_cookie, cookie_name: "session_token")

# --- signed stream names (our own few lines of Turbo and CableReady, per their source) -------

STREAMS = []

def stream_verifier(key) = ActiveSupport::MessageVerifier.new(key, digest: "SHA256", serializer: JSON)

# Turbo::Streams::StreamName#stream_name_from, in our words: arrays join with ":", records give
# their GlobalID param, anything else its to_param.
def turbo_stream_name(streamables)
  return streamables.map { |s| turbo_stream_name(s) }.join(":") if streamables.is_a?(Array)

  streamables.respond_to?(:to_gid_param) ? streamables.to_gid_param : streamables.to_param
end

# CableReady::Compoundable#compound: the full gid text of records, to_s of anything else.
def cable_ready_name(keys) = keys.map { |k| k.respond_to?(:to_global_id) ? k.to_global_id.to_s : k.to_s }.join(":")

TURBO_SALT = "turbo/signed_stream_verifier_key"
CABLE_READY_SALT = "cable_ready/verifier_key"

def stream_vector(id, kind:, token:, expect:, explicit_key: nil, salt: nil, **extra)
  key = explicit_key || Rails.application.key_generator.generate_key(salt)
  verified = begin
    value = stream_verifier(key).verified(token)
    value.nil? ? { "nil" => true } : { "value" => value }
  rescue StandardError => e
    { "raises" => e.class.name }
  end
  STREAMS << { "id" => id, "kind" => kind, "salt" => salt, "explicit_key" => explicit_key, "token" => token,
               "rails" => verified, "expect" => expect }.merge(extra.transform_keys(&:to_s)).compact
end

turbo_key = Rails.application.key_generator.generate_key(TURBO_SALT)
[[[ROOM, :messages], "room-messages"], [ROOM, "room"], [[:chat, "2021"], "symbols"]].each do |streamables, label|
  name = turbo_stream_name(streamables)
  stream_vector("turbo-#{label}", kind: "turbo", salt: TURBO_SALT, token: stream_verifier(turbo_key).generate(name),
    expect: ok(name))
end
room_name = turbo_stream_name([ROOM, :messages])
other_digest_key = key_generator_for(SECRET, OTHER_DIGEST).generate_key(TURBO_SALT)
stream_vector("turbo-other-key-digest", kind: "turbo", salt: TURBO_SALT,
  token: stream_verifier(other_digest_key).generate(room_name), expect: ok(room_name, "derived:#{OTHER_DIGEST}"),
  pinned_expect: error("bad_signature"), leniency: "other_key_digest")
other_secret_key = key_generator_for(OTHER_SECRET, APP_DIGEST).generate_key(TURBO_SALT)
stream_vector("turbo-other-secret", kind: "turbo", salt: TURBO_SALT,
  token: stream_verifier(other_secret_key).generate(room_name), expect: error("bad_signature"))
good = stream_verifier(turbo_key).generate(room_name)
stream_vector("turbo-tampered", kind: "turbo", salt: TURBO_SALT, token: "#{good[0..-2]}#{good[-1] == '0' ? '1' : '0'}",
  expect: error("bad_signature"))
stream_vector("turbo-not-a-string", kind: "turbo", salt: TURBO_SALT, token: stream_verifier(turbo_key).generate(42),
  expect: error("unexpected_payload"), deliberate: "non_string_stream_name",
  note: "turbo_stream_from only signs strings; Rails would stream_from \"42\"")
stream_vector("turbo-explicit-key", kind: "explicit", explicit_key: "s3Krit",
  token: stream_verifier("s3Krit").generate(turbo_stream_name([:chat, "2021"])), expect: ok("chat:2021", "explicit"),
  note: "anycable-go's utils/message_verifier_test.go vector")
# A name whose strict base64 has '+' and '/', signed URL-safe as AnyCable's Ruby signer does.
url_name = "?>>?>>~~~"
url_data = Base64.urlsafe_encode64(JSON.dump(url_name), padding: false)
url_token = "#{url_data}--#{OpenSSL::HMAC.hexdigest('SHA256', turbo_key, url_data)}"
stream_vector("turbo-url-safe-base64", kind: "turbo", salt: TURBO_SALT, token: url_token,
  expect: ok(url_name), strict_expect: error("invalid_format"), leniency: "url_safe_base64",
  note: "Rails before 8.0.2 decodes strictly; 8.0.2+ falls back to URL-safe")

cable_ready_key = Rails.application.key_generator.generate_key(CABLE_READY_SALT)
cr_name = cable_ready_name([ROOM, :messages])
stream_vector("cable-ready-room-messages", kind: "cable_ready", salt: CABLE_READY_SALT,
  token: stream_verifier(cable_ready_key).generate(cr_name), expect: ok(cr_name))
stream_vector("cable-ready-turbo-token", kind: "cable_ready", salt: CABLE_READY_SALT, token: good,
  expect: error("bad_signature"), note: "a Turbo token is not a CableReady token (different salt)")

# --- naming -----------------------------------------------------------------------------------

CHANNEL_CLASSES = %w[
  RoomChannel Chats::AppearancesChannel HTMLParserChannel GraphQLChannel Api::V2::NotificationsChannel
  ABC1DefChannel Turbo::StreamsChannel TypingNotificationsChannel
].freeze
CHANNEL_CLASSES.each do |name|
  *namespaces, leaf = name.split("::")
  parent = namespaces.inject(Object) do |mod, ns|
    mod.const_defined?(ns, false) ? mod.const_get(ns, false) : mod.const_set(ns, Module.new)
  end
  parent.const_set(leaf, Class.new(ActionCable::Channel::Base)) unless parent.const_defined?(leaf, false)
end
channel_names = CHANNEL_CLASSES.map { |name| { "class" => name, "channel_name" => name.constantize.channel_name } }
broadcastings = [
  { "class" => "RoomChannel", "record" => "gid://my-app/Room/1", "broadcasting" => RoomChannel.broadcasting_for(ROOM) },
  { "class" => "Chats::AppearancesChannel", "record" => "gid://my-app/User/1",
    "broadcasting" => Chats::AppearancesChannel.broadcasting_for(USER) },
]

UNDERSCORE_WORDS = %w[Room HTMLParser GraphQLChannel MyAPIClient Api::Thing ABC1Def A1BCd AbCDeFGh dash-ed already_snake
                      Version2Thing Admin::Account APIController RESTfulThing].freeze
underscore_plain = UNDERSCORE_WORDS.map { |w| { "word" => w, "underscore" => ActiveSupport::Inflector.underscore(w) } }
ACRONYMS = %w[API GraphQL REST].freeze
ActiveSupport::Inflector.inflections(:en) { |inflect| ACRONYMS.each { |a| inflect.acronym(a) } }
underscore_acronyms = UNDERSCORE_WORDS.map { |w| { "word" => w, "underscore" => ActiveSupport::Inflector.underscore(w) } }

gids = [USER, ROOM, TOKEN, ACCOUNT].map do |record|
  gid = record.to_global_id
  { "model" => record.class.name, "id" => record.id.to_s, "gid" => gid.to_s, "param" => record.to_gid_param }
end
app_names = %w[MyApp Campfire FizzyApp Shop2].map do |mod|
  railtie_name = Rails::Railtie.send(:generate_railtie_name, "#{mod}::Application")
  { "module" => mod, "railtie_name" => railtie_name, "global_id_app" => railtie_name.remove("_application").dasherize }
end

# --- write ------------------------------------------------------------------------------------

travel_back

document = {
  "generator" => "crates/ferrocable-rails/vectors/gen.rb (via bin/gen-rails-vectors)",
  "rails" => Rails.version,
  "ruby" => RUBY_VERSION,
  "rack" => Rack.release,
  "globalid" => Gem.loaded_specs["globalid"]&.version&.to_s,
  "load_defaults" => LOAD_DEFAULTS,
  "secret_key_base" => SECRET,
  "other_secret_key_base" => OTHER_SECRET,
  "now" => iso(NOW),
  "now_unix" => NOW.to_i,
  "app" => {
    "module" => "MyApp",
    "global_id_app" => GlobalID.app,
    "session_key" => SESSION_KEY,
  },
  "config" => {
    "key_generator_digest" => APP_DIGEST,
    "signed_cookie_digest" => Rails.application.config.action_dispatch.signed_cookie_digest,
    "cookies_serializer" => Rails.application.config.action_dispatch.cookies_serializer.to_s,
    "use_cookies_with_metadata" => metadata,
    "use_authenticated_cookie_encryption" => authenticated,
    "use_message_serializer_for_metadata" =>
      Rails.application.config.active_support.respond_to?(:use_message_serializer_for_metadata) ?
        Rails.application.config.active_support.use_message_serializer_for_metadata : nil,
  },
  "key_generator" => KEYS,
  "cookies" => COOKIES,
  "sessions" => SESSIONS,
  "signed_ids" => SIGNED_IDS,
  "streams" => STREAMS,
  "naming" => {
    "channel_names" => channel_names,
    "broadcastings" => broadcastings,
    "underscore" => underscore_plain,
    "underscore_with_acronyms" => { "acronyms" => ACRONYMS, "words" => underscore_acronyms },
    "global_ids" => gids,
    "app_names" => app_names,
  },
}

OUT = File.join(OUT_DIR, Rails.version, "load_defaults-#{LOAD_DEFAULTS}.json")
FileUtils.mkdir_p(File.dirname(OUT))
File.write(OUT, "#{JSON.pretty_generate(document)}\n")
counts = %w[cookies sessions signed_ids streams].map { |k| "#{document[k].size} #{k}" }.join(", ")
warn "gen.rb: Rails #{Rails.version}, load_defaults #{LOAD_DEFAULTS}: #{counts} -> #{OUT}"
