# frozen_string_literal: true

# The recorder's hooks, shared by both reference apps.
require_relative "../../../shared/control_controller"
