# frozen_string_literal: true

class SessionsController < ActionController::Base
  skip_forgery_protection

  # Campfire's Authentication concern: start_new_session_for(user).
  def create
    session_record = User.find(params[:user_id]).sessions.create!
    cookies.signed.permanent[:session_token] = { value: session_record.token, httponly: true, same_site: :lax }
    head :no_content
  end

  def create_short
    session_record = User.find(params[:user_id]).sessions.create!
    cookies.signed[:session_token] = { value: session_record.token, expires: 1.second.from_now, httponly: true }
    head :no_content
  end

  # A correctly signed session_token holding whatever the recorder asks (SQL-ish values).
  def create_raw
    cookies.signed[:session_token] = { value: params[:value], httponly: true }
    head :no_content
  end

  def theme
    cookies.signed[:theme] = { value: params[:value], httponly: true }
    head :no_content
  end
end
