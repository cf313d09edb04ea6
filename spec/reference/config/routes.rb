# frozen_string_literal: true

# ActionCable's engine prepends `mount ActionCable.server => "/cable"` itself.
Rails.application.routes.draw do
  mount ReferenceCable::ControlApp.new => "/_control"
end
