//! `ferrocable init --rails-root DIR`: the migration assistant.

pub mod app_config;
pub mod cable_yml;
pub mod ruby;
pub mod value;
mod calls;
pub mod classes;
pub mod interp;
pub mod sym;
pub mod analysis;

#[cfg(test)]
mod debug_tests {
    use super::*;
    #[test]
    #[ignore]
    fn dump() {
        let root = std::path::PathBuf::from(std::env::var("APP").unwrap());
        let chans = std::env::var("CHANNELS").unwrap_or("app/channels".into());
        let mut config = app_config::read(&root, "production");
        let files = app_config::ruby_files_under(&root, &chans);
        let index = classes::ClassIndex::new(&root, &files);
        for c in index.all() { app_config::collect_constants(&ruby::SourceFile{namespaces: vec![c.ns.clone()], statements: vec![]}, &mut config.scope); }
        let conn = analysis::connection(&index, &config.scope);
        eprintln!("CONNECTION {:#?}", conn.as_ref().map(|c| (&c.identifiers, &c.claims_accessors, &c.jwt)));
        if let Some(c) = &conn { for p in c.connect.iter().flatten() { eprintln!("  path rejected={} conds={:?}\n   effects={:?}", p.rejected, p.conds.iter().map(|c| format!("{}={}", c.0, c.1)).collect::<Vec<_>>(), p.effects); } }
        for class in index.all() {
            if !analysis::is_channel(&index, &class) { continue; }
            let f = analysis::channel(&index, &class, conn.as_ref(), &config.scope);
            eprintln!("\nCHANNEL {} {:?} timers={:?} unread={:?}", f.name, f.superclasses, f.timers, f.unread);
            for p in f.subscribe.iter().flatten() { eprintln!("  sub rejected={} conds={:?}\n    effects={:?}", p.rejected, p.conds.iter().map(|c| format!("{}={}", c.0, c.1)).collect::<Vec<_>>(), p.effects); }
            for a in &f.actions { for p in &a.paths { eprintln!("  action {} effects={:?}", a.name, p.effects); } }
        }
    }
}
