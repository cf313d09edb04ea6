# frozen_string_literal: true

Rails.application.routes.draw do
  # Campfire's login: a signed, permanent session_token cookie.
  post "/session", to: "sessions#create"
  # For the recorder only: a session cookie that expires in a second, and a signed cookie
  # of another name (to copy under session_token: the purpose check).
  post "/session/short", to: "sessions#create_short"
  post "/theme", to: "sessions#theme"
  post "/session/raw", to: "sessions#create_raw"
  post "/_control/eval", to: "control#eval"
  get "/_control/ping", to: "control#ping"
end
