# frozen_string_literal: true

class User < ApplicationRecord
  has_many :project_memberships
  has_many :projects, through: :project_memberships

  # Devise's authenticatable_salt: the first 29 characters of the bcrypt hash.
  def authenticatable_salt
    encrypted_password[0, 29]
  end
end
