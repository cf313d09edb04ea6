# frozen_string_literal: true

class SessionsController < ActionController::Base
  skip_forgery_protection

  def create
    reset_session
    session[:user_id] = params[:user_id].to_i
    head :no_content
  end

  # What Devise (through Warden's session serializer) stores for `sign_in user`.
  def create_devise
    reset_session
    user = User.find(params[:user_id])
    session["warden.user.user.key"] = [[user.id], user.authenticatable_salt]
    head :no_content
  end

  def destroy
    reset_session
    session[:flash_seen] = true
    head :no_content
  end
end
