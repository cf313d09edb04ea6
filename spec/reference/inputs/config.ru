# frozen_string_literal: true

# puma -e production -b tcp://127.0.0.1:PORT spec/reference/inputs/config.ru
require_relative "config/environment"
run Rails.application
