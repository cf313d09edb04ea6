# frozen_string_literal: true

# Shimizu Order Suite's MenuChannel (hafaloha.md §4) without the logging: streams
# "menu_channel_<restaurant_id>" from the connection identifier, never reads params,
# rejects when restaurant_id is blank, has no actions. Like the original, subscribed and
# unsubscribed are public methods.
class MenuChannel < ApplicationCable::Channel
  def subscribed
    if restaurant_id.present?
      stream_from "menu_channel_#{restaurant_id}"
    else
      reject
    end
  end

  def unsubscribed
  end
end
