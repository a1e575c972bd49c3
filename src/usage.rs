//! Token usage: one summable type (a leaf: llm/ reports it, events carry it).

use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// Tokens of one request, or of many added together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_write
    }

    /// Merge a later report of the same request: Anthropic sends input tokens in
    /// message_start and cumulative output tokens in message_delta, so a non-zero later
    /// value replaces the earlier one field by field.
    pub fn merge_from(&mut self, later: Usage) {
        fn take(a: &mut u64, b: u64) {
            if b != 0 {
                *a = b;
            }
        }
        take(&mut self.input, later.input);
        take(&mut self.output, later.output);
        take(&mut self.cache_read, later.cache_read);
        take(&mut self.cache_write, later.cache_write);
    }
}

impl Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            input: self.input + o.input,
            output: self.output + o.output,
            cache_read: self.cache_read + o.cache_read,
            cache_write: self.cache_write + o.cache_write,
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        *self = *self + o;
    }
}

impl std::iter::Sum for Usage {
    fn sum<I: Iterator<Item = Usage>>(iter: I) -> Usage {
        iter.fold(Usage::default(), Add::add)
    }
}
