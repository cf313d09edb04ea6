# frozen_string_literal: true

# Rejects unless the JWT claim "role" is admin or staff.
# ferrocable config: [channels.StaffChannel] streams = ["staff_{restaurant_id}"],
#                    claims_in = { role = ["admin", "staff"] }
class StaffChannel < ApplicationCable::Channel
  ROLES = %w[admin staff].freeze

  def subscribed
    if ROLES.include?(connection.claims["role"])
      stream_from "staff_#{restaurant_id}"
    else
      reject
    end
  end

  def unsubscribed
  end
end
