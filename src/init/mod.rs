//! `ferrocable init --rails-root DIR`: the migration assistant.

pub mod app_config;
pub mod cable_yml;
pub mod ruby;
pub mod value;
