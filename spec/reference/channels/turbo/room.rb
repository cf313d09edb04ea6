# frozen_string_literal: true

# A database-less record for Turbo stream names: Room 1 is gid://shimizu-order-suite/Room/1,
# so `[room, :board]` names the stream "<to_gid_param>:board" as a real model would.
Room = Struct.new(:id) do
  include GlobalID::Identification

  def self.find(id) = new(id)
end
