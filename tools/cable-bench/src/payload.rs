//! What each bench broadcast carries: the default JSON object padded to `--payload` bytes, or
//! (`--payload-kind turbo`) the turbo-stream Rails 7.2 itself published for a 2 KB message
//! partial with `broadcast_append_to` (fixtures/transcripts/rails-7.2/turbo_large_broadcast.json:
//! markup, entities, non-ASCII and emoji, `<>&` as `\u003c \u003e \u0026`).
//!
//! Both carry the measuring fields at a fixed place at the start, so a client finds them
//! without parsing: `{"g":G,"w":W,"t":T,...}`, or a first attribute on the element,
//! `"\u003cturbo-stream data-bench=\"G:W:T\" action=\"append\" ...` (turbo-rails writes extra
//! attributes before `action`). The turbo payload is already what ActiveSupport writes, as
//! Rails' own is, so servers splice it rather than rewrite it.

use crate::wire::{self, Kind, TURBO_FIELDS, turbo_fields};

/// `--payload-kind`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadKind {
    /// `{"g":…,"w":…,"t":…,"p":"xxx…"}` padded to `--payload` bytes.
    Json,
    /// The recorded Rails turbo-stream (about 1.9 KB); `--payload` is ignored.
    Turbo,
}

impl PayloadKind {
    /// As results name it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PayloadKind::Json => "json",
            PayloadKind::Turbo => "turbo",
        }
    }
}

const RECORDED: &str =
    include_str!("../../../fixtures/transcripts/rails-7.2/turbo_large_broadcast.json");
/// Where the bench attribute goes: right after the element's name.
const TURBO_OPEN: &[u8] = br#""\u003cturbo-stream "#;

/// Writes every broadcast's bytes.
#[derive(Debug, Clone)]
pub(crate) struct Payloads {
    kind: PayloadKind,
    size: usize,
    /// The recorded payload after `"\u003cturbo-stream ` (Turbo only).
    turbo_rest: Vec<u8>,
}

impl Payloads {
    pub(crate) fn new(kind: PayloadKind, size: usize) -> Result<Payloads, String> {
        let turbo_rest = match kind {
            PayloadKind::Json => Vec::new(),
            PayloadKind::Turbo => recorded_turbo()?
                .strip_prefix(TURBO_OPEN)
                .ok_or("the recorded payload does not start with a turbo-stream element")?
                .to_vec(),
        };
        Ok(Payloads {
            kind,
            size,
            turbo_rest,
        })
    }

    /// Bytes of a broadcast with typical field values (the figure results report).
    pub(crate) fn len(&self) -> usize {
        let mut out = Vec::new();
        self.write(1_000_000, 100, 1_700_000_000_000_000, &mut out);
        out.len()
    }

    /// The payload of broadcast `g` in window `w`, published at `t` µs since the epoch.
    pub(crate) fn write(&self, g: u64, w: u64, t: u64, out: &mut Vec<u8>) {
        use std::io::Write;
        match self.kind {
            PayloadKind::Json => wire::payload(g, w, t, self.size, out),
            PayloadKind::Turbo => {
                out.clear();
                out.extend_from_slice(TURBO_FIELDS);
                let _ = write!(out, "{g}:{w}:{t}\\\" ");
                out.extend_from_slice(&self.turbo_rest);
            }
        }
    }
}

/// The payload Rails PUBLISHed in the recorded session.
fn recorded_turbo() -> Result<Vec<u8>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(RECORDED).map_err(|e| format!("recorded transcript: {e}"))?;
    doc["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["op"] == "publish"))
        .and_then(|s| s["payload"].as_str())
        .map(|p| p.as_bytes().to_vec())
        .ok_or_else(|| "the recorded transcript has no publish step".into())
}

/// Checks the turbo payload (run by `cable-bench selftest`): the recorded bytes, the fields
/// found again, and valid JSON that is a turbo-stream append.
pub(crate) fn self_check() -> Result<(), String> {
    let turbo = Payloads::new(PayloadKind::Turbo, 200)?;
    let mut p = Vec::new();
    turbo.write(12, 3, 1_700_000_000_000_000, &mut p);
    if turbo_fields(&p)
        != Some(Kind::Bench {
            g: 12,
            w: 3,
            t: 1_700_000_000_000_000,
        })
    {
        return Err("turbo payload fields not found again".into());
    }
    let text: String = serde_json::from_slice(&p)
        .map_err(|e| format!("turbo payload is not a JSON string: {e}"))?;
    if !text.starts_with(r#"<turbo-stream data-bench="12:3:1700000000000000" action="append" target="messages"><template>"#)
        || !text.ends_with("</template></turbo-stream>")
    {
        return Err(format!("turbo payload: {}", &text[..text.len().min(120)]));
    }
    if !(1800..=2200).contains(&turbo.len()) {
        return Err(format!(
            "turbo payload is {} bytes, not about 2 KB",
            turbo.len()
        ));
    }
    Ok(())
}
