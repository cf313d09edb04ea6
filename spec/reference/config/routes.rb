# frozen_string_literal: true

# Action Cable's engine prepends `mount ActionCable.server => "/cable"` itself
# (config.action_cable.mount_path); from 7.0.4 that route is anchored, so only /cable is the
# endpoint. REFERENCE_MOUNT=routes adds the app's own mount, as Hafaloha's routes.rb has it:
# a plain `mount` is never anchored, so /cable/<anything> reaches Action Cable on every version.
Rails.application.routes.draw do
  mount ActionCable.server => "/cable" if ReferenceCable::MOUNT == "routes"
  mount ReferenceCable::ControlApp.new => "/_control"
end
