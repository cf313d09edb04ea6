# frozen_string_literal: true

# A database-less stand-in for Shimizu Order Suite's User model. Only its GlobalID matters:
# to_gid_param is the URL-safe base64 (no padding) of "gid://shimizu-order-suite/User/<id>",
# exactly what the real ActiveRecord model produces, so the connection identifier and the
# remote-disconnect channel match Rails byte for byte.
class User
  include GlobalID::Identification

  attr_reader :id

  def initialize(id)
    @id = id
  end

  def self.find(id)
    new(id)
  end

  def ==(other)
    other.is_a?(User) && other.id.to_s == id.to_s
  end
end
