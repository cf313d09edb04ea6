//! Every class and module the analysis may need: the channel files, and on demand the
//! constants they refer to (concerns, services), found by Rails' autoload naming
//! (`Authentication::SessionLookup` → `authentication/session_lookup.rb` under `app/*`,
//! `app/*/concerns` and `lib`). Methods are looked up through includes and superclasses.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ferrocable_rails::underscore;

use super::app_config::read_ruby;
use super::ruby::{Body, Def, Expr, Namespace};

/// A class or module with where it was read.
#[derive(Debug, Clone)]
pub struct ClassInfo {
    /// Its declaration.
    pub ns: Namespace,
    /// Relative path of its file.
    pub file: String,
    /// Modules it includes or prepends, as written.
    pub includes: Vec<String>,
}

impl ClassInfo {
    /// Statements of the class body.
    pub fn statements(&self) -> &Body {
        &self.ns.statements
    }
}

/// The classes read so far, and where to find more.
#[derive(Debug)]
pub struct ClassIndex {
    root: PathBuf,
    autoload_roots: Vec<String>,
    classes: RefCell<Vec<Rc<ClassInfo>>>,
    tried: RefCell<Vec<String>>,
}

impl ClassIndex {
    /// An index of the classes in `files` (relative to `root`).
    pub fn new(root: &Path, files: &[String]) -> ClassIndex {
        let mut autoload_roots = vec!["lib".to_string(), "app/lib".to_string()];
        if let Ok(entries) = std::fs::read_dir(root.join("app")) {
            let mut dirs: Vec<String> = entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| format!("app/{}", e.file_name().to_string_lossy()))
                .collect();
            dirs.sort();
            for d in dirs {
                autoload_roots.push(format!("{d}/concerns"));
                autoload_roots.push(d);
            }
        }
        let index = ClassIndex {
            root: root.to_path_buf(),
            autoload_roots,
            classes: RefCell::new(Vec::new()),
            tried: RefCell::new(Vec::new()),
        };
        for f in files {
            index.load_file(f);
        }
        index
    }

    fn load_file(&self, rel: &str) {
        let Some(file) = read_ruby(&self.root, rel) else {
            return;
        };
        let mut classes = self.classes.borrow_mut();
        for ns in file.parsed.namespaces {
            let includes = ns
                .statements
                .iter()
                .filter_map(|s| s.expr.as_call())
                .filter(|c| c.recv.is_none() && matches!(c.name.as_str(), "include" | "prepend"))
                .flat_map(|c| c.args.iter().filter_map(Expr::dotted))
                .collect();
            classes.push(Rc::new(ClassInfo {
                ns,
                file: rel.to_string(),
                includes,
            }));
        }
    }

    /// Every class read from the initial files and since.
    pub fn all(&self) -> Vec<Rc<ClassInfo>> {
        self.classes.borrow().clone()
    }

    /// The class or module named `name` as seen from inside `from` (Ruby's lexical lookup,
    /// simplified: `From::Name`, then outward, then `Name`), loading its file if needed.
    pub fn resolve(&self, name: &str, from: &str) -> Option<Rc<ClassInfo>> {
        let name = name.trim_start_matches("::");
        let mut scopes: Vec<String> = Vec::new();
        let mut prefix = from.to_string();
        loop {
            scopes.push(if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}::{name}")
            });
            match prefix.rfind("::") {
                Some(i) => prefix.truncate(i),
                None if !prefix.is_empty() => prefix.clear(),
                None => break,
            }
        }
        for candidate in &scopes {
            if let Some(found) = self.get(candidate) {
                return Some(found);
            }
        }
        for candidate in &scopes {
            if self.autoload(candidate) {
                return self.get(candidate);
            }
        }
        None
    }

    fn get(&self, name: &str) -> Option<Rc<ClassInfo>> {
        self.classes
            .borrow()
            .iter()
            .find(|c| c.ns.name == name)
            .cloned()
    }

    fn autoload(&self, name: &str) -> bool {
        if self.tried.borrow().iter().any(|t| t == name) {
            return false;
        }
        self.tried.borrow_mut().push(name.to_string());
        let rel = format!("{}.rb", underscore(name));
        for root in &self.autoload_roots {
            let path = format!("{root}/{rel}");
            if self.root.join(&path).is_file() {
                self.load_file(&path);
                return self.get(name).is_some();
            }
        }
        false
    }

    /// The class and its ancestors, nearest first: the class, its included modules (last
    /// included first), then the superclass and its own, and so on.
    pub fn ancestors(&self, class: &Rc<ClassInfo>) -> Vec<Rc<ClassInfo>> {
        let mut out: Vec<Rc<ClassInfo>> = Vec::new();
        let mut current = Some(class.clone());
        while let Some(c) = current {
            if out.iter().any(|o| o.ns.name == c.ns.name) {
                break;
            }
            out.push(c.clone());
            for inc in c.includes.iter().rev() {
                if let Some(m) = self.resolve(inc, &c.ns.name)
                    && !out.iter().any(|o| o.ns.name == m.ns.name)
                {
                    out.push(m);
                }
            }
            current =
                c.ns.superclass
                    .as_ref()
                    .and_then(|s| self.resolve(s, &c.ns.name));
        }
        out
    }

    /// The names of the class's superclasses as written, nearest first, including ones that
    /// are not in the app (`ActionCable::Channel::Base`).
    pub fn superclass_names(&self, class: &Rc<ClassInfo>) -> Vec<String> {
        let mut names = Vec::new();
        let mut current = Some(class.clone());
        while let Some(c) = current {
            let Some(sup) = &c.ns.superclass else { break };
            if names.contains(sup) {
                break;
            }
            names.push(sup.clone());
            current = self.resolve(sup, &c.ns.name);
            if let Some(found) = &current {
                *names.last_mut().expect("just pushed") = found.ns.name.clone();
            }
        }
        names
    }

    /// An instance (or singleton) method by name, through the ancestors; with the class
    /// that defines it.
    pub fn method(
        &self,
        class: &Rc<ClassInfo>,
        name: &str,
        singleton: bool,
    ) -> Option<(Def, Rc<ClassInfo>)> {
        for c in self.ancestors(class) {
            if let Some(d) =
                c.ns.defs
                    .iter()
                    .find(|d| d.name == name && d.singleton == singleton)
            {
                return Some((d.clone(), c.clone()));
            }
        }
        None
    }
}
