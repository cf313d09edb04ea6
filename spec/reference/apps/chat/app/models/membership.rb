# frozen_string_literal: true

class Membership < ApplicationRecord
  belongs_to :room
  belongs_to :user
end
