# frozen_string_literal: true

Rails.application.routes.draw do
  post "/login", to: "sessions#create"                 # session[:user_id]
  post "/login_devise", to: "sessions#create_devise"   # session["warden.user.user.key"]
  post "/logout", to: "sessions#destroy"
  post "/_control/eval", to: "control#eval"
  get "/_control/ping", to: "control#ping"
end
