# frozen_string_literal: true

# ferrocable config:
#   [channels.ChatChannel]  streams = ["chat_{params.room}"], require_params = ["room"]
#   actions.speak.broadcast_to = "chat_{params.room}", actions.echo.transmit = true
class ChatChannel < ApplicationCable::Channel
  def subscribed
    if params[:room].present?
      stream_from "chat_#{params[:room]}"
    else
      reject
    end
  end

  def unsubscribed
  end

  # Publishes the whole data hash ("action" included) through Redis.
  def speak(data)
    ActionCable.server.broadcast("chat_#{params[:room]}", data)
  end

  # Sends the whole data hash ("action" included) back to this subscription only.
  def echo(data)
    transmit(data)
  end
end
