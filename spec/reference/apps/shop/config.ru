# frozen_string_literal: true

# puma -e production -b tcp://127.0.0.1:PORT config.ru   (see ../README.md)
require_relative "config/environment"
run Rails.application
