# frozen_string_literal: true

# Rejects unless the identifier param restaurant_id equals the connection's restaurant_id,
# compared as strings (1 and "1" both match restaurant 1; a missing param never does).
# ferrocable config: [channels.TenantChannel] streams = ["tenant_{restaurant_id}"],
#                    params_match = { restaurant_id = "restaurant_id" }
class TenantChannel < ApplicationCable::Channel
  def subscribed
    if params.key?(:restaurant_id) && params[:restaurant_id].to_s == restaurant_id.to_s
      stream_from "tenant_#{restaurant_id}"
    else
      reject
    end
  end

  def unsubscribed
  end
end
