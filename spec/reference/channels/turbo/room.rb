# frozen_string_literal: true

# A database-less record for Turbo stream names: Room 1 is gid://shimizu-order-suite/Room/1,
# so `[room, :board]` names the stream "<to_gid_param>:board" as a real model would.
class Room
  include GlobalID::Identification

  attr_reader :id

  def initialize(id)
    @id = id
  end

  def self.find(id)
    new(id)
  end
end
