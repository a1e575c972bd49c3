//! Single-call generation: the whole system in one reply, continued when cut.

use crate::events::Event;
use crate::llm::{LlmError, Message, StopReason};
use crate::protocol::parse_reply;

use super::{prompts, Collected, Session};

/// At most this many continuations of a reply cut at max_tokens.
pub const MAX_CONTINUATIONS: u32 = 3;

pub(crate) async fn generate(s: &Session<'_>, spec: &str) -> Result<Collected, LlmError> {
    let prompt = prompts::single(spec);
    let first = s
        .ask(
            "generate",
            "generate.json",
            vec![Message::user(prompt.clone())],
        )
        .await?;
    let mut text = first.text;
    let mut stop = first.stop_reason;
    let mut n = 0;
    while stop == StopReason::MaxTokens && n < MAX_CONTINUATIONS {
        n += 1;
        s.events.emit(Event::Continuation {
            label: "generate".into(),
            attempt: n,
        });
        // No prefill: the partial reply is an assistant turn, and a user turn asks to go on.
        let messages = vec![
            Message::user(prompt.clone()),
            Message::assistant(text.clone()),
            Message::user(prompts::CONTINUE),
        ];
        let next = s
            .ask(
                &format!("continue {n}"),
                &format!("generate-continue-{n}.json"),
                messages,
            )
            .await?;
        text = join_continuation(&text, &next.text);
        stop = next.stop_reason;
    }
    let mut c = Collected::default();
    let parsed = parse_reply(&text);
    if parsed.changes.is_empty() && parsed.incomplete.is_empty() {
        c.warnings.push(format!(
            "the reply held no file blocks; it began: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    c.absorb(parsed, false);
    Ok(c)
}

/// Join a reply and its continuation, dropping text the continuation repeated.
pub fn join_continuation(prev: &str, next: &str) -> String {
    // The longest prefix of `next` that `prev` already ends with (at least 8 characters,
    // so a coincidence of a few characters is not taken for a repeat).
    let max = next.len().min(prev.len()).min(4000);
    let overlap = (8..=max)
        .rev()
        .filter(|&k| next.is_char_boundary(k))
        .find(|&k| prev.ends_with(&next[..k]))
        .unwrap_or(0);
    format!("{prev}{}", &next[overlap..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_joins_and_drops_a_repeat() {
        assert_eq!(
            join_continuation("abc\nprint('hel", "lo')\n"),
            "abc\nprint('hello')\n"
        );
        assert_eq!(
            join_continuation("line one\n    return x +", "    return x + 1\n</file>\n"),
            "line one\n    return x + 1\n</file>\n"
        );
    }
}
