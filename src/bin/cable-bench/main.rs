//! cable-bench: an Action Cable load generator (placeholder; see issue 4).

fn main() {
    eprintln!("cable-bench: not built yet");
    std::process::exit(2);
}
