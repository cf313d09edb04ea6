# frozen_string_literal: true

# Action Cable's engine mounts /cable itself (config.action_cable.mount_path).
Rails.application.routes.draw do
  mount ReferenceInputs::ControlApp.new => "/_control"
end
