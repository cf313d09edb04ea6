# frozen_string_literal: true

module ApplicationCable
  # Development-style: every connection is accepted, nothing identifies it (the example
  # profiles in config/examples/ run with auth.mode = "none").
  class Connection < ActionCable::Connection::Base
  end
end
