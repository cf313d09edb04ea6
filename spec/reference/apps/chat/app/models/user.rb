# frozen_string_literal: true

class User < ApplicationRecord
  has_many :memberships
  has_many :rooms, through: :memberships
  has_many :sessions
end
