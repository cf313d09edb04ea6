//! What a channel does besides streaming (database writes, broadcasts, transmits from
//! callbacks) and how each is reported: ferrocable does not run the app's Ruby, so each is a
//! problem with what to do instead.

use super::super::interp::Effect;
use super::{Finding, Problem};

/// Effects that ferrocable does not reproduce.
pub(super) fn side_effect(e: &Effect, when: &str, finding: &mut Finding) {
    match e {
        Effect::SideEffect(what, line) => finding.problem(Problem {
            why: format!("{when} runs `{what}` (line {line}), which ferrocable cannot do"),
            remedy: "move it to the Rails side (a controller or job the client calls), or keep \
                     this channel on Rails"
                .into(),
        }),
        Effect::Broadcast { line, target, .. } => finding.problem(Problem {
            why: format!("{when} broadcasts to {target} (line {line})"),
            remedy: "broadcast from the Rails side when the client calls it, or keep this \
                     channel on Rails"
                .into(),
        }),
        Effect::Transmit(data, line) => finding.problem(Problem {
            why: format!("{when} transmits {data} (line {line})"),
            remedy: "send it from Rails with a broadcast, or keep this channel on Rails".into(),
        }),
        Effect::Unknown(what, line) => finding.problem(Problem {
            why: format!("the reader does not understand `{what}` (line {line}) in {when}"),
            remedy: "simplify it, or keep this channel on Rails".into(),
        }),
        Effect::Rescue(what, line) => finding.assume(format!(
            "the `rescue` on line {line} (`{what}`) is not reproduced: nothing raises there in \
             ferrocable"
        )),
        Effect::Logging(_) => finding.ignore("logging (ferrocable logs subscriptions itself)"),
        _ => {}
    }
}

pub(super) fn effect_text(e: &Effect) -> String {
    match e {
        Effect::SideEffect(w, l) | Effect::Unknown(w, l) => format!("`{w}` (line {l})"),
        Effect::Broadcast {
            target, data, line, ..
        } => {
            format!("broadcast {data} to {target} (line {line})")
        }
        Effect::Transmit(d, l) => format!("transmit {d} (line {l})"),
        Effect::Stream { target, line, .. } => format!("stream {target} (line {line})"),
        Effect::Reject(l) => format!("reject (line {l})"),
        other => format!("{other:?}"),
    }
}
