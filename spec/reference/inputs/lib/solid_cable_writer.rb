# frozen_string_literal: true

require "digest"

module ReferenceInputs
  # What Solid Cable (>= 3.0; rails/solid_cable, read at v3.0.12 and v4.0.0) writes for a
  # broadcast, reimplemented here because Debian does not package the gem:
  #
  # - the table of its install template's db/cable_schema.rb: solid_cable_messages with
  #   channel binary(1024), payload binary(512 MiB), created_at datetime, channel_hash
  #   bigint (limit 8), all NOT NULL, and an index on each of channel, channel_hash and
  #   created_at;
  # - per broadcast one Active Record `insert` of created_at (Time.current), channel (with
  #   cable.yml's channel_prefix, which Solid Cable's adapter applies), payload (the JSON
  #   Action Cable encoded) and channel_hash: the first 8 bytes of SHA256(channel) read as a
  #   signed big-endian 64-bit integer.
  #
  # Solid Cable also runs its trim job after each insert (deleting, with probability 2/100,
  # up to 100 rows older than a day); these recordings never have rows that old.
  class CableMessage < ActiveRecord::Base
    self.table_name = "solid_cable_messages"

    class << self
      def hash_of(channel)
        Digest::SHA256.digest(channel.to_s).unpack1("q>")
      end

      def write(channel, payload)
        insert({ created_at: Time.current, channel: channel, payload: payload,
                 channel_hash: hash_of(channel) })
      end
    end
  end

  module CableSchema
    module_function

    def load!
      ActiveRecord::Schema[7.1].define(version: 1) do
        create_table "solid_cable_messages", force: :cascade do |t|
          t.binary "channel", limit: 1024, null: false
          t.binary "payload", limit: 536_870_912, null: false
          t.datetime "created_at", null: false
          t.integer "channel_hash", limit: 8, null: false
          t.index ["channel"], name: "index_solid_cable_messages_on_channel"
          t.index ["channel_hash"], name: "index_solid_cable_messages_on_channel_hash"
          t.index ["created_at"], name: "index_solid_cable_messages_on_created_at"
        end
      end
    end
  end
end
