//! `ferrocable init --rails-root DIR`: the migration assistant.

pub mod ruby;
