# frozen_string_literal: true

# stream_for / broadcast_to naming: channel_name "notes" + ":" + params[:id].to_param,
# so {"channel":"NotesChannel","id":5} streams "notes:5" and NotesChannel.broadcast_to("5", ...)
# publishes to "<prefix>:notes:5". A missing id rejects (stream_or_reject_for(nil)).
# ferrocable config: [channels.NotesChannel] streams = ["notes:{params.id}"]
class NotesChannel < ApplicationCable::Channel
  def subscribed
    stream_or_reject_for params[:id]
  end

  def unsubscribed
  end
end
