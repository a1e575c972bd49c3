//! Prices per million tokens, in one table: Anthropic's from its platform docs (November
//! 2026); OpenAI's as third-party copies of its pricing page showed them (March to June
//! 2026, unverified here: `--price-in`/`--price-out` override any of them). A longer id
//! comes before its prefix (`gpt-4o-mini` before `gpt-4o`).

use super::Usage;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

/// Model id prefix -> price. A dated id ("claude-sonnet-5-5-20261001") matches its prefix.
const TABLE: &[(&str, Price)] = &[
    (
        "claude-sonnet-5-5",
        Price {
            input: 2.0,
            output: 10.0,
            cache_read: 0.20,
            cache_write: 2.50,
        },
    ),
    (
        "claude-opus-5-5",
        Price {
            input: 4.0,
            output: 20.0,
            cache_read: 0.40,
            cache_write: 5.00,
        },
    ),
    (
        "claude-haiku-5-5",
        Price {
            input: 0.10,
            output: 0.50,
            cache_read: 0.01,
            cache_write: 0.125,
        },
    ),
    openai("gpt-5-mini", 0.25, 2.0, 0.025),
    openai("gpt-5", 1.25, 10.0, 0.125),
    openai("gpt-4.1-mini", 0.40, 1.60, 0.10),
    openai("gpt-4.1", 2.0, 8.0, 0.50),
    openai("gpt-4o-mini", 0.15, 0.60, 0.075),
    openai("gpt-4o", 2.50, 10.0, 1.25),
];

/// An OpenAI model's price: cached input is cheaper; there is no charge for writing it.
const fn openai(
    id: &'static str,
    input: f64,
    output: f64,
    cache_read: f64,
) -> (&'static str, Price) {
    (
        id,
        Price {
            input,
            output,
            cache_read,
            cache_write: 0.0,
        },
    )
}

/// Context windows in tokens, where known (Anthropic's docs; OpenAI's as published). An id
/// matches by prefix, longer ids first.
const WINDOWS: &[(&str, u64)] = &[
    ("claude-sonnet-5-5", 1_000_000),
    ("gpt-5", 400_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
];

/// The context window of `model`, or None when unknown (nothing is checked then).
pub fn context_window(model: &str) -> Option<u64> {
    WINDOWS
        .iter()
        .find(|(id, _)| model.starts_with(id))
        .map(|(_, w)| *w)
}

/// The price of `model`, or None when the table does not know it.
pub fn price_of(model: &str) -> Option<Price> {
    TABLE
        .iter()
        .find(|(id, _)| model.starts_with(id))
        .map(|(_, p)| *p)
}

/// Estimated USD for `usage` on `model`; None for an unknown model.
pub fn cost_usd(model: &str, usage: &Usage) -> Option<f64> {
    cost_at(price_of(model)?, usage)
}

/// USD for `usage` at price `p`.
pub fn cost_at(p: Price, usage: &Usage) -> Option<f64> {
    let m = 1_000_000.0;
    Some(
        usage.input as f64 * p.input / m
            + usage.output as f64 * p.output / m
            + usage.cache_read as f64 * p.cache_read / m
            + usage.cache_write as f64 * p.cache_write / m,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sonnet_cost_matches_the_table() {
        let u = Usage {
            input: 1_000_000,
            output: 100_000,
            cache_read: 1_000_000,
            cache_write: 0,
        };
        let c = cost_usd("claude-sonnet-5-5", &u).unwrap();
        assert!((c - (2.0 + 1.0 + 0.2)).abs() < 1e-9, "{c}");
    }

    #[test]
    fn a_longer_id_is_not_priced_as_its_prefix() {
        assert_eq!(price_of("gpt-4o-mini-2024-07-18").unwrap().input, 0.15);
        assert_eq!(price_of("gpt-4o").unwrap().input, 2.50);
        assert_eq!(price_of("gpt-5-mini").unwrap().output, 2.0);
    }

    #[test]
    fn dated_ids_match_and_unknown_models_have_no_price() {
        assert!(price_of("claude-opus-5-5-20261101").is_some());
        assert!(cost_usd("gpt-9", &Usage::default()).is_none());
    }
}
